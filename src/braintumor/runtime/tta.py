"""Test-time augmentation over flips, one implementation for evaluation and analysis: per-flip
probabilities from one batched call, their mean as logits, and the flip-variance uncertainty
figures of the analysis."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from braintumor.data.roi import orient_coords

FLIPS: dict[str, tuple[int, ...]] = {"none": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}


def tta_views(tta: bool) -> tuple[str, ...]:
    """The flips an evaluation or analysis with flip TTA on (``tta``) or off runs: the slice and
    its left-right mirror, or the slice alone."""
    return ("none", "h") if tta else ("none",)


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


def tta_logits(
    run: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    task: str,
    flips: tuple[str, ...] = ("none", "h"),
    coord_channels: int = 0,
) -> np.ndarray:
    """The mean over flips of :func:`tta_probabilities`, as logits (``logit(p)`` B×1×H×W for
    ``segment``, ``log(p)`` B×K for ``classify``): thresholds at ``logit(t)`` and argmax work as on
    the network's own logits."""
    mean = np.clip(tta_probabilities(run, x, task, flips, coord_channels).mean(axis=0), 1e-6, 1 - 1e-6)
    if task == "segment":
        return np.log(mean / (1.0 - mean)).astype(np.float32)[:, None]
    return np.log(mean).astype(np.float32)


def mask_variance(probs: np.ndarray, masks: np.ndarray) -> list[float | None]:
    """Mean over each mask's pixels of the across-flip variance of the tumour probability; None
    where a mask is empty, and for every sample when there is one view only (no flip to compare).

    Args:
        probs: F×B×H×W float probabilities; masks: B×H×W bool.
    """
    if len(probs) < 2:
        return [None] * len(masks)
    var = probs.var(axis=0)
    return [float(v[m].mean()) if m.any() else None for v, m in zip(var, masks, strict=True)]


def class_variance(probs: np.ndarray) -> list[float | None]:
    """Per sample, the variance over the F views (flips, ensemble members) of the probability of
    its predicted class (F×B×K); None for every sample when there is one view only."""
    if len(probs) < 2:
        return [None] * probs.shape[1]
    predicted = probs.mean(axis=0).argmax(axis=-1)
    return [float(v) for v in probs.var(axis=0)[np.arange(probs.shape[1]), predicted]]
