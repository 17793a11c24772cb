"""Test-time augmentation over flips: averaged logits (torch) and per-flip probabilities (numpy)
with the flip-variance uncertainty figures of the analysis."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from braintumor.data.roi import orient_coords

FLIPS: dict[str, tuple[int, ...]] = {"none": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}


def predict_tta(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    task: str,
    flips: tuple[str, ...] = ("none", "h"),
    coord_channels: int = 0,
) -> torch.Tensor:
    """Average the model's probabilities over flipped copies of ``x`` (B×C×H×W).

    The last ``coord_channels`` channels (``roi_coords``) are mirrored with the crop
    (:func:`~braintumor.data.roi.orient_coords`), as in training.

    Segmentation outputs (B×1×H×W logits) are flipped back before averaging sigmoid probabilities;
    classification outputs (B×K logits) average softmax probabilities. The mean is returned as
    logits (``logit(p)`` or ``log(p)``), so thresholds at 0 and argmax work as without TTA.
    """
    total: torch.Tensor | None = None
    for name in flips:
        dims = FLIPS[name]
        out = forward(orient_coords(torch.flip(x, dims), coord_channels) if dims else x).float()
        if task == "segment":
            prob = torch.sigmoid(torch.flip(out, dims) if dims else out)
        else:
            prob = out.softmax(dim=1)
        total = prob if total is None else total + prob
    assert total is not None  # flips is never empty
    mean = (total / len(flips)).clamp(1e-6, 1 - 1e-6)
    return torch.logit(mean) if task == "segment" else mean.log()


def tta_probabilities(
    run: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    task: str,
    flips: tuple[str, ...] = ("none", "h"),
    coord_channels: int = 0,
) -> np.ndarray:
    """Per-flip probabilities from ONE batched call of ``run`` on all flipped copies of ``x``.

    Args:
        run: B×C×H×W float32 -> logits (B×1×H×W for ``segment``, B×K for ``classify``).
        x: B×C×H×W float32 batch.
        flips: names from :data:`FLIPS`.
        coord_channels: ``roi_coords`` channels ending ``x``; mirrored with the crop.

    Returns:
        float32 F×B×H×W tumour probabilities (flipped back) or F×B×K class probabilities.
    """
    if not flips:
        raise ValueError("flips must name at least one view, e.g. ('none',)")
    views = [orient_coords(np.flip(x, axis=FLIPS[n]), coord_channels) if FLIPS[n] else x for n in flips]
    out = run(np.ascontiguousarray(np.concatenate(views)))
    out = out.reshape(len(flips), len(x), *out.shape[1:])
    if task == "segment":
        logits = np.stack(
            [
                np.flip(o[:, 0], axis=FLIPS[n]) if FLIPS[n] else o[:, 0]
                for n, o in zip(flips, out, strict=True)
            ]
        )
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    shifted = out - out.max(axis=-1, keepdims=True)
    e = np.exp(shifted.astype(np.float64))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def mask_variance(probs: np.ndarray, masks: np.ndarray) -> list[float | None]:
    """Mean over each mask's pixels of the across-flip variance of the tumour probability.

    Args:
        probs: F×B×H×W float probabilities; masks: B×H×W bool (None where a mask is empty).
    """
    var = probs.var(axis=0)
    return [float(v[m].mean()) if m.any() else None for v, m in zip(var, masks, strict=True)]


def class_variance(probs: np.ndarray) -> np.ndarray:
    """B float: across-flip variance of the probability of each sample's predicted class (F×B×K)."""
    predicted = probs.mean(axis=0).argmax(axis=-1)
    return probs.var(axis=0)[np.arange(probs.shape[1]), predicted]
