"""Predict masks or classes for image files with a run's best weights.

Preprocessing is read from the weights' metadata (never re-typed). Single files have no patient
volume, so ``percentile-volume`` normalisation falls back to the same percentiles per image. Masks
follow the run's evaluation settings (``eval`` in its ``config.yaml``: threshold, flip TTA, largest
component, hole filling), per image since a file is no volume, so they are the masks its scores
describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from braintumor.config import EvalConfig, Preprocessing, load_config
from braintumor.data.preprocess import normalised, resize_square, to_channels_first, volume_with_context
from braintumor.data.readers import read_image
from braintumor.errors import DataError
from braintumor.evaluation.postprocess import postprocess_masks
from braintumor.models.network import network_from_weights
from braintumor.run_dir import RunDir
from braintumor.runtime.forward import logit_of, torch_logits
from braintumor.runtime.tta import tta_logits, tta_views


@dataclass
class Prediction:
    """Result for one input file (``error`` set when it failed)."""

    input: str
    ok: bool = True
    error: str = ""
    tumour: bool | None = None
    area_px: int | None = None
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


def prepare_image(array: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Decoded H×W(×C) array -> C×S×S float32 model input, as the cache prepares training data
    (one separate image: ``percentile-volume`` falls back to the image's own percentiles; a 2.5D
    model gets the image stacked with copies of itself)."""
    chw = to_channels_first(array, prep.channels)
    image, _ = resize_square(normalised([chw], [prep], volume=False)[0][0], prep.image_size)
    return volume_with_context(image[None], prep.context_slices)[0]


def run_evaluation(weights: str | Path) -> EvalConfig:
    """The ``eval`` settings of the run whose ``checkpoints/best.safetensors`` is ``weights``
    (defaults when the weights lie outside a run folder)."""
    config = RunDir.of_weights(Path(weights).resolve()).config
    return load_config(config).eval if config.is_file() else EvalConfig()


def mask_to_original(mask_logits: torch.Tensor, shape: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """S×S logits -> H×W binary mask (tumour probability above ``threshold``), undoing
    pad-to-square + resize."""
    h, w = shape
    side = max(h, w)
    up = F.interpolate(
        mask_logits[None, None].float(), size=(side, side), mode="bilinear", align_corners=False
    )
    top, left = (side - h) // 2, (side - w) // 2
    return (up[0, 0, top : top + h, left : left + w] > logit_of(threshold)).to(torch.uint8).numpy()


class Predictor:
    """Loads a run's ``best.safetensors`` once and predicts file after file, scored as
    ``evaluation`` says (default: the run's own ``eval`` settings, see :func:`run_evaluation`)."""

    def __init__(
        self, weights: str | Path, precision: str = "auto", evaluation: EvalConfig | None = None
    ) -> None:
        self.evaluation = evaluation if evaluation is not None else run_evaluation(weights)
        self.net, self.card = network_from_weights(weights)
        self.prep = self.card.preprocessing
        self.task = self.card.task
        self.precision = precision
        if self.task == "classify" and self.prep.roi_expansion is not None:
            raise DataError(
                weights, "this classifier expects tumour crops; use it through `braintumor analyze`"
            )

    def __call__(self, array: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Model input (C×S×S) and float32 output (mask logits S×S, or class probabilities K),
        through the runtime's forward pass and flip TTA (as the run's evaluation says)."""
        x = prepare_image(array, self.prep)
        flips = tta_views(self.evaluation.tta)

        def run(batch: np.ndarray) -> np.ndarray:
            return torch_logits(self.net, batch, self.precision, channels_last=True)

        out = torch.from_numpy(tta_logits(run, x[None], self.task, flips)[0])
        return torch.from_numpy(x), (out[0] if self.task == "segment" else out.softmax(0))

    def predict_file(
        self, path: str | Path, out_dir: Path | None = None, name: str | None = None
    ) -> Prediction:
        """Predict one file; failures become ``ok=False`` with the error message. Outputs in
        ``out_dir`` are named after ``name`` (default: the file's stem)."""
        result = Prediction(str(path))
        try:
            array = read_image(path)
            _, out = self(array)
        except DataError as exc:
            return Prediction(str(path), ok=False, error=str(exc))
        if self.task == "segment":
            ev = self.evaluation
            mask = mask_to_original(out, array.shape[:2], ev.threshold)
            mask = postprocess_masks(
                [mask], [""], [0.0], ev.largest_component, ev.fill_holes, ev.component_fraction
            )[0]
            result.tumour, result.area_px = bool(mask.any()), int(mask.sum())
            if out_dir is not None:
                result.outputs = write_mask_outputs(name or Path(path).stem, array, mask, out_dir)
        else:
            classes = list(self.card.classes)
            result.probabilities = {c: float(p) for c, p in zip(classes, out.tolist(), strict=True)}
            result.label = classes[int(out.argmax())]
        return result


def write_mask_outputs(name: str, array: np.ndarray, mask: np.ndarray, out_dir: Path) -> dict[str, str]:
    """``<name>_mask.png`` ({0,255}) and ``<name>_overlay.png`` (prediction outlined in red)."""
    from PIL import Image

    from braintumor.inference.overlay import overlay_rgb
    from braintumor.io_utils import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path, overlay_path = out_dir / f"{name}_mask.png", out_dir / f"{name}_overlay.png"
    atomic_write(mask_path, lambda tmp: Image.fromarray(mask * 255).save(tmp, format="PNG"))
    rgb = overlay_rgb(array, pred=mask)
    atomic_write(overlay_path, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))
    return {"mask": str(mask_path), "overlay": str(overlay_path)}
