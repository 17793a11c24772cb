"""A network's per-slice outputs over a cached dataset, through the runtime's forward pass and flip
TTA, and the evaluation's post-processing: shared by evaluation and the tuning of its settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from braintumor.config import EvalConfig
from braintumor.data.dataset import CachedDataset
from braintumor.data.index import SampleIndex
from braintumor.evaluation import postprocess_masks
from braintumor.runtime.forward import torch_logits
from braintumor.runtime.tta import tta_logits, tta_views
from braintumor.training.data import eval_loader


def predict(
    net: nn.Module,
    ds: CachedDataset,
    batch_size: int = 32,
    precision: str = "auto",
    tta: bool = False,
    task: str = "segment",
    coord_channels: int = 0,
) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    """Yield (batch, float32 logits) over a dataset in order, through the runtime's forward pass
    and flip TTA (:func:`~braintumor.runtime.tta.tta_logits`; flips ``none`` + ``h`` with ``tta``);
    ``coord_channels``: the ``roi_coords`` channels ending each input, mirrored with it."""
    net.eval()
    flips = tta_views(tta)

    def run(x: np.ndarray) -> np.ndarray:
        return torch_logits(net, x, precision, channels_last=True)

    for batch in eval_loader(ds, batch_size):
        image = batch["image"].float().numpy()
        yield batch, torch.from_numpy(tta_logits(run, image, task, flips, coord_channels))


def postprocessed(
    preds: list[np.ndarray], patients: list[str], keys: list[float], options: EvalConfig
) -> list[np.ndarray]:
    """Apply the configured post-processing per slice or per patient volume."""
    return postprocess_masks(
        preds, patients, keys, options.largest_component, options.fill_holes,
        options.component_fraction, options.postprocess_scope,
    )  # fmt: skip


def is_volumetric(index: SampleIndex) -> bool:
    """Whether every sample is a slice of a volume (single 2D images have slice -1)."""
    return bool((index.frame["slice"] >= 0).all())


@dataclass
class SlicePredictions:
    """Per-slice outputs over a dataset, in order, with each slice's truth, patient and position."""

    outputs: list[np.ndarray] = field(default_factory=list)
    truths: list[np.ndarray] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    keys: list[float] = field(default_factory=list)


def predict_slices(
    net: nn.Module,
    ds: CachedDataset,
    slices: dict[str, float],
    options: EvalConfig,
    precision: str,
    keep: Callable[[torch.Tensor], np.ndarray],
) -> SlicePredictions:
    """Run the segmenter over ``ds`` (flip TTA as ``options`` says); ``keep`` turns each batch's
    B×H×W logits into what is stored (a thresholded mask, or the logits themselves)."""
    out = SlicePredictions()
    for batch, logits in predict(net, ds, options.batch_size, precision, tta=options.tta, task="segment"):
        out.outputs += list(keep(logits[:, 0]))
        out.truths += list(batch["mask"][:, 0].to(torch.uint8).numpy())
        out.patients += [str(p) for p in batch["patient_id"]]
        out.samples += [str(s) for s in batch["sample_id"]]
    out.keys = [float(slices.get(s, 0)) for s in out.samples]
    return out
