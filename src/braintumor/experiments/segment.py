"""Apply a trained run to raw slices exactly as its training cache prepared them.

Slices are normalised per patient (so ``percentile-volume`` sees the patient's whole stack, as
:func:`braintumor.data.cache.build_cache` does), padded square and resized to the model's size; a
predicted mask is mapped back to the slice's own H×W. Used by the integrated pipeline evaluation
and to write out-of-fold masks for radiogenomics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from braintumor.data.index import SampleIndex
from braintumor.errors import DataError
from braintumor.run_dir import RunDir


@dataclass
class TrainedModel:
    """A run's best network with its metadata and the precision it was trained in."""

    net: nn.Module
    meta: dict[str, Any]
    precision: str
    run_dir: Path

    @classmethod
    def load(cls, run_dir: str | Path, task: str) -> TrainedModel:
        """``run_dir/checkpoints/best.safetensors`` (+ ``config.yaml`` for the precision).

        Raises:
            DataError: no weights, or a model of another task.
        """
        from braintumor.config import load_config
        from braintumor.models.network import network_from_weights

        run_dir = Path(run_dir)
        weights = RunDir(run_dir).best_weights
        if not weights.is_file():
            raise DataError(weights, "weights not found; is this a finished train/cv fold folder?")
        net, meta = network_from_weights(weights)
        if meta.get("task") != task:
            raise DataError(weights, f"holds a {meta.get('task')} model; a {task} model is needed here")
        config = RunDir(run_dir).config
        precision = load_config(config).train.precision if config.is_file() else "32-true"
        return cls(net.eval(), meta, precision, run_dir)

    @property
    def prep(self) -> dict[str, Any]:
        """The preprocessing record saved with the weights."""
        return dict(self.meta["preprocessing"])

    @property
    def size(self) -> int:
        return int(self.prep["image_size"])

    def normalised(self, raws: list[np.ndarray]) -> list[np.ndarray]:
        """One patient's decoded slices (H×W or H×W×C) -> normalised float32 C×H×W, as the cache."""
        from braintumor.data.preprocess import normalize_images, to_channels_first

        prep = self.prep
        chw = [to_channels_first(r, int(prep["channels"])) for r in raws]
        pct = (float(prep["percentiles"][0]), float(prep["percentiles"][1]))
        return normalize_images(chw, str(prep["normalization"]), pct)

    @torch.inference_mode()
    def forward(self, batch: np.ndarray) -> torch.Tensor:
        """N×C×S×S float32 -> float32 network outputs (logits)."""
        from braintumor.runtime.forward import autocast

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with autocast(self.precision):
            return self.net(x.contiguous(memory_format=torch.channels_last)).float()


def predict_masks(seg: TrainedModel, raws: list[np.ndarray], postprocess: bool = False) -> list[np.ndarray]:
    """Binary uint8 H×W masks of one patient's decoded slices (each at its own size).

    With ``postprocess``, the largest connected component is kept and its holes are filled.
    """
    from braintumor.data.preprocess import resize_square
    from braintumor.evaluation.postprocess import postprocess as clean
    from braintumor.inference.predict import mask_to_original

    if not raws:
        return []
    images = [resize_square(im, seg.size)[0] for im in seg.normalised(raws)]
    logits = seg.forward(np.stack(images))
    masks = []
    for raw, logit in zip(raws, logits, strict=True):
        mask = mask_to_original(logit[0], raw.shape[:2])
        masks.append(clean(mask, largest=True, fill=True).astype(np.uint8) if postprocess else mask)
    return masks


def fold_runs(folder: str | Path) -> dict[int, Path]:
    """Fold number -> run folder: the ``fold<k>/`` of a CV run, or a single-fold run itself.

    Raises:
        DataError: no finished run (``metrics.json``) in the folder.
    """
    import json

    folder = Path(folder)
    if RunDir(folder).metrics.is_file():
        return {int(json.loads(RunDir(folder).metrics.read_text()).get("fold", 0)): folder}
    runs = {k: fold.path for k, fold in RunDir(folder).folds().items()}
    runs = {k: p for k, p in sorted(runs.items()) if RunDir(p).metrics.is_file()}
    if not runs:
        raise DataError(folder, "holds no finished run (metrics.json or fold<k>/metrics.json)")
    return runs


def test_samples(run_dir: Path, index: SampleIndex) -> SampleIndex:
    """The rows of ``index`` among the run's held-out test patients (its ``splits.json`` fold)."""
    from braintumor.config import load_config
    from braintumor.data.splits import Splits

    splits = Splits.load(RunDir(run_dir).splits)
    fold = load_config(RunDir(run_dir).config).data.fold
    return splits.subset(index, fold, "test")


def patients(index: SampleIndex) -> list[tuple[str, list[int]]]:
    """(patient id, row positions in slice order) for each patient of ``index``."""
    frame = index.frame.sort_values(["patient_id", "slice"], kind="stable")
    return [(str(pid), list(rows.index)) for pid, rows in frame.groupby("patient_id", sort=True)]


def write_out_of_fold_masks(run_folder: str | Path, data: str | Path, out: str | Path) -> int:
    """Write ``<sample_id>_mask.png`` ({0, 255}) for every test slice of every fold of a run,
    predicted by the fold's own model (so no patient is segmented by a model that saw it).

    Returns:
        The number of masks written.
    """
    from PIL import Image

    from braintumor.data.loaders import load_dataset
    from braintumor.data.readers import read_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = load_dataset(data)
    written = 0
    for run_dir in fold_runs(run_folder).values():
        seg = TrainedModel.load(run_dir, "segment")
        test = test_samples(run_dir, index)
        for _, rows in patients(test):
            raws = [read_image(test.frame.at[r, "image"]) for r in rows]
            for r, mask in zip(rows, predict_masks(seg, raws), strict=True):
                Image.fromarray((mask * 255).astype(np.uint8)).save(
                    out / f"{test.frame.at[r, 'sample_id']}_mask.png"
                )
                written += 1
    if written == 0:
        raise DataError(
            run_folder, f"its test patients are not in {data}; masks_from must be a run on this dataset"
        )
    return written
