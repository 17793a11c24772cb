"""Intensity normalisation, channel handling and square resizing of 2D slices, as a model's
:class:`~braintumor.config.Preprocessing` record says.

:func:`normalised` is the one place a :class:`Preprocessing`'s intensity rule is applied: the
training cache calls it per patient, analysis per volume or per image (``percentile-volume`` on a
single image falls back to that image's percentiles, :meth:`Preprocessing.method_for`).
Arrays here are channel-first: images float32 C×H×W, masks uint8 H×W.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from braintumor.config import Preprocessing
from braintumor.errors import DataError


def normalised(
    images: list[np.ndarray], preps: Sequence[Preprocessing], volume: bool
) -> list[list[np.ndarray]]:
    """The C×H×W slices of one volume (``volume``) or separate images, normalised as each of
    ``preps`` says; preps with the same method share one percentile computation per slice or volume.

    Returns one list of float32 C×H×W slices per prep, in order.
    """
    out: list[list[np.ndarray] | None] = [None] * len(preps)
    by_method: dict[str, list[int]] = {}
    for k, prep in enumerate(preps):
        by_method.setdefault(prep.method_for(volume), []).append(k)
    for method, members in by_method.items():
        pairs = sorted({preps[k].percentiles for k in members})
        for pair, result in zip(pairs, normalize_with_percentiles(images, method, pairs), strict=True):
            for k in members:
                if preps[k].percentiles == pair:
                    out[k] = result
    return [o if o is not None else [] for o in out]


def to_channels_first(array: np.ndarray, channels: int = 0) -> np.ndarray:
    """H×W or H×W×C (any dtype) -> float32 C×H×W with ``channels`` channels.

    ``channels=0`` keeps the file's own (grayscale -> 1). Colour to 1 channel averages the
    channels; 1 to 3 repeats the slice (as for ImageNet-style 3-channel models).
    """
    chw = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    chw = chw.astype(np.float32, copy=False)
    if channels in (0, chw.shape[0]):
        return np.ascontiguousarray(chw)
    if channels == 1:
        return chw.mean(axis=0, keepdims=True)
    if chw.shape[0] == 1:
        return np.repeat(chw, channels, axis=0)
    raise ValueError(f"cannot convert a {chw.shape[0]}-channel image to {channels} channels")


def percentile_range(images: Sequence[np.ndarray], percentiles: Sequence[float]) -> np.ndarray:
    """Per-channel percentiles over all pixels of C×H×W ``images`` -> C×len(percentiles) (C×2 for a
    (low, high) pair)."""
    channels = images[0].shape[0]
    values = [np.concatenate([im[c].ravel() for im in images]) for c in range(channels)]
    return np.stack([percentiles_of(v, percentiles) for v in values]).astype(np.float32)


def percentiles_of(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.percentile(values, qs)`` (linear interpolation) of a flat array.

    When the values are small non-negative integers (8/16-bit images stored as float), the order
    statistics are read from a histogram's cumulative counts instead of partitioning the array:
    the same numbers (to float rounding), several times faster on a 512² slice.
    """
    n = values.size
    if n and values.min() >= 0 and values.max() < 65536:
        ints = values.astype(np.int32)
        if np.array_equal(ints, values):
            cumulative = np.cumsum(np.bincount(ints))
            position = np.asarray(qs, dtype=np.float64) / 100.0 * (n - 1)
            low = np.floor(position).astype(np.int64)
            below = np.searchsorted(cumulative, low, side="right")  # value of rank `low`
            above = np.searchsorted(cumulative, np.minimum(low + 1, n - 1), side="right")
            return below + (above - below) * (position - low)
    return np.percentile(values, qs)


def normalize_with_percentiles(
    images: list[np.ndarray], method: str, pairs: Sequence[tuple[float, float]]
) -> list[list[np.ndarray]]:
    """:func:`normalize_images` of the same slices for several percentile pairs, with one
    ``np.percentile`` call (one partition) per image or volume instead of one per pair.

    Returns one list of normalised slices per pair, equal to ``normalize_images(images, method, pair)``.
    """
    if method not in ("percentile-image", "percentile-volume"):
        return [normalize_images(images, method, pair) for pair in pairs]
    qs = sorted({q for pair in pairs for q in pair})
    groups = [images] if method == "percentile-volume" else [[im] for im in images]
    out: list[list[np.ndarray]] = [[] for _ in pairs]
    for group in groups:
        table = percentile_range(group, qs)  # C×len(qs)
        for k, (lo, hi) in enumerate(pairs):
            ranges = table[:, [qs.index(lo), qs.index(hi)]]
            out[k].extend(rescale(im, ranges) for im in group)
    return out


def rescale(image: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Map each channel's (low, high) to (0, 1), clipped."""
    low = ranges[:, 0, None, None]
    span = np.maximum(ranges[:, 1, None, None] - low, 1e-6)
    return np.clip((image - low) / span, 0.0, 1.0).astype(np.float32)


def normalize_images(
    images: list[np.ndarray], method: str, percentiles: tuple[float, float] = (10.0, 99.0)
) -> list[np.ndarray]:
    """Normalise the C×H×W slices of one patient.

    Methods: ``percentile-volume`` (one range per channel over all the patient's slices, as the LGG
    reference does), ``percentile-image``, ``zscore-volume`` (mean and std per channel over the
    non-zero voxels of all the patient's slices, background kept at 0, as nnU-Net normalises MRI),
    ``zscore-nonzero-image`` (the same per image), ``zscore-image``, ``minmax-image``, ``none``.
    """
    if method == "none":
        return images
    if method == "zscore-volume":
        return zscore_nonzero(images)
    if method == "zscore-nonzero-image":
        return [im for image in images for im in zscore_nonzero([image])]
    if method == "percentile-volume":
        ranges = percentile_range(images, percentiles)
        return [rescale(im, ranges) for im in images]
    if method == "percentile-image":
        return [rescale(im, percentile_range([im], percentiles)) for im in images]
    if method == "minmax-image":
        return [rescale(im, percentile_range([im], (0.0, 100.0))) for im in images]
    if method == "zscore-image":
        out = []
        for im in images:
            mean = im.mean(axis=(1, 2), keepdims=True)
            std = np.maximum(im.std(axis=(1, 2), keepdims=True), 1e-6)
            out.append(((im - mean) / std).astype(np.float32))
        return out
    raise ValueError(f"unknown normalization {method!r}")


def zscore_nonzero(images: list[np.ndarray]) -> list[np.ndarray]:
    """Standardise each channel of C×H×W ``images`` by the mean and std of its non-zero pixels over
    all of them; zero pixels (background) stay 0."""
    out = [np.zeros(im.shape, np.float32) for im in images]
    for c in range(images[0].shape[0]):
        inside = [im[c] != 0 for im in images]
        values = np.concatenate([im[c][m] for im, m in zip(images, inside, strict=True)])
        if values.size == 0:
            continue
        mean, std = float(values.mean()), max(float(values.std()), 1e-6)
        for im, o, m in zip(images, out, inside, strict=True):
            o[c][m] = (im[c][m] - mean) / std
    return out


def pad_to_square(image: torch.Tensor) -> torch.Tensor:
    """Zero-pad a (N×)C×H×W tensor symmetrically to a square."""
    h, w = image.shape[-2:]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return F.pad(image, (left, side - w - left, top, side - h - top))


def resize_square(
    image: np.ndarray, size: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pad C×H×W (and its H×W mask) to a square, then resize to size×size.

    The image is resized with antialiased bilinear interpolation; the mask is area-averaged after
    the same padding and thresholded at 0.5, so it stays binary and aligned.
    """
    img = pad_to_square(torch.from_numpy(np.ascontiguousarray(image))[None])
    if img.shape[-1] != size:
        img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    out_mask = None
    if mask is not None:
        m = pad_to_square(torch.from_numpy(np.ascontiguousarray(mask))[None, None].float())
        if m.shape[-1] != size:
            m = F.interpolate(m, size=(size, size), mode="area")
        out_mask = (m[0, 0] >= 0.5).to(torch.uint8).numpy()
    return img[0].numpy(), out_mask


def binarize_mask(path: str | Path, array: np.ndarray) -> np.ndarray:
    """Map a {0,1} or {0,255} mask to uint8 {0,1}; other values raise DataError."""
    values = np.unique(array)
    if np.isin(values, (0, 1)).all():
        return array.astype(np.uint8)
    if np.isin(values, (0, 255)).all():
        return (array == 255).astype(np.uint8)
    shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
    raise DataError(path, f"mask values {{{shown}}} are not binary; expected {{0,1}} or {{0,255}}")


def context_positions(groups: Sequence[str], k: int) -> np.ndarray:
    """N×(2k+1) int64: for each slice, the positions of the slices stacked with it (2.5D input).

    ``groups`` names each slice's volume (its patient), a volume's slices consecutive and in slice
    order. Row i lists slices i-k..i+k of i's volume; past the volume's first or last slice the end
    slice repeats, so a separate image (its own group) is stacked with copies of itself.
    """
    n = len(groups)
    index = np.arange(n)
    if k == 0 or n == 0:
        return index[:, None]
    labels = np.asarray(groups, dtype=object)
    changes = labels[1:] != labels[:-1]
    first = np.maximum.accumulate(np.where(np.r_[True, changes], index, 0))
    last = np.minimum.accumulate(np.where(np.r_[changes, True], index, n - 1)[::-1])[::-1]
    return np.clip(index[:, None] + np.arange(-k, k + 1), first[:, None], last[:, None])


def with_context(images: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """N×C×H×W slices -> M×(S·C)×H×W inputs: row m stacks ``images[positions[m]]`` (S slices,
    lowest first, each with its C channels), as :func:`context_positions` lists them."""
    stacked = images[positions]
    return stacked.reshape(len(positions), -1, *images.shape[2:])


def volume_with_context(slices: np.ndarray, k: int) -> np.ndarray:
    """The N×C×H×W slices of one volume (N=1: a single image) as 2.5D inputs N×((2k+1)·C)×H×W."""
    return slices if k == 0 else with_context(slices, context_positions(["volume"] * len(slices), k))
