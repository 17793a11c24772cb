"""Tumour region-of-interest crops: the mask's bounding box widened by an expansion factor.

Conventions:
    * Boxes are ``(row0, row1, col0, col1)``, half-open, in pixels.
    * The box is scaled about its centre; each side becomes at least ``min_side`` pixels.
    * At the image border the box is **clipped, not shifted**: the crop never contains pixels
      from outside the image and the tumour keeps its offset from the box centre, so a border
      tumour's crop is smaller (and non-square). Shifting would instead move the tumour off-centre
      by a data-dependent amount and hide that the context is missing.
    * ``crop_roi`` then zero-pads the crop symmetrically to a square (keeping its aspect ratio)
      and resizes it with :func:`braintumor.data.preprocess.resize_square`, the same resize the
      whole-slice path uses (antialiased bilinear for the image, area + 0.5 threshold for the mask).
    * With ``coords`` (CoordConv-style), two channels are appended: the row and the column of the
      original slice each output pixel samples, scaled to [-1, 1] between the slice's first and last
      pixel centres. They are exact (computed from the box, padding and resize, not resampled), so
      the padded margin extrapolates linearly; together they tell where the crop was and how large.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from braintumor.config import COORD_CHANNELS
from braintumor.data.preprocess import resize_square

MIN_SIDE = 8
WHOLE_IMAGE_EXPANSION = 1e6
"""Expansion factors at or above this clip the box to the whole slice: a crop that does not depend
on where the mask is (the ``whole`` arm of ``braintumor sweep-roi``)."""


def coord_channels(prep: Mapping[str, Any]) -> int:
    """Position channels a model with preprocessing record ``prep`` takes after the image channels:
    2 with ``roi_coords``, else 0 (records written before the option have no key)."""
    return COORD_CHANNELS if prep.get("roi_coords") else 0


def orient_coords(x: Any, n_coords: int) -> Any:
    """Re-orient the ``n_coords`` position channels that end a flipped C×H×W crop (or B×C×H×W
    batch, numpy or torch) so they describe the mirrored slice.

    A flip reverses a coordinate ramp; negating a reversed ramp gives the mirrored slice's
    coordinates (they are symmetric about 0), which increase again as every unflipped crop's do. So
    a flipped crop is a mirrored patient, never a layout the model cannot meet at evaluation.
    Unflipped crops pass through unchanged.
    """
    if n_coords == 0:
        return x
    if n_coords != COORD_CHANNELS:
        raise ValueError(f"{n_coords} position channels; roi_coords has {COORD_CHANNELS} (row, column)")
    rows, cols = x[..., -2:-1, :, :], x[..., -1:, :, :]
    row_sign = (rows[..., -1:, :1] >= rows[..., :1, :1]) * 2 - 1
    col_sign = (cols[..., :1, -1:] >= cols[..., :1, :1]) * 2 - 1
    parts = [x[..., :-2, :, :], rows * row_sign, cols * col_sign]
    if isinstance(x, torch.Tensor):
        return torch.cat(parts, dim=-3)
    return np.concatenate(parts, axis=-3).astype(x.dtype, copy=False)


def _as_2d_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"mask has shape {m.shape}; expected H×W (or 1×H×W)")
    return m


def foreground_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every nonzero element of ``mask`` (any number of
    dimensions), widened by ``margin`` on each side and clipped to the array; None when empty.

    Reduces each axis with ``any`` instead of listing every nonzero index: a few times faster on
    a large slice.
    """
    m = np.asarray(mask)
    box = []
    for axis in range(m.ndim):
        hits = np.flatnonzero(m.any(axis=tuple(a for a in range(m.ndim) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, m.shape[axis])))
    return tuple(box)


def roi_box(mask: np.ndarray, expansion: float = 1.0, min_side: int = MIN_SIDE) -> tuple[int, int, int, int]:
    """Bounding box of the mask's nonzero pixels, scaled by ``expansion`` about its centre.

    Args:
        mask: H×W (or 1×H×W) array; nonzero = tumour.
        expansion: 1.0 = tight box, 2.0 = twice the height and width (same centre).
        min_side: smallest side before clipping, so tiny tumours keep some context.

    Returns:
        ``(row0, row1, col0, col1)``, half-open, clipped to the image.

    Raises:
        ValueError: empty mask, or ``expansion`` < 1.
    """
    m = _as_2d_mask(mask)
    if not expansion >= 1.0:
        raise ValueError(f"expansion={expansion}; expected >= 1.0 (1.0 = tight box)")
    box = foreground_box(m)
    if box is None:
        raise ValueError(
            "mask is empty: no tumour region to crop; skip tumour-free slices or use "
            "expansion=None (whole image)"
        )
    rows, cols = box
    r0, r1 = _scale(rows.start, rows.stop, expansion, min_side, m.shape[0])
    c0, c1 = _scale(cols.start, cols.stop, expansion, min_side, m.shape[1])
    return r0, r1, c0, c1


def _scale(lo: int, hi: int, expansion: float, min_side: int, limit: int) -> tuple[int, int]:
    """Scale the half-open interval [lo, hi) about its centre, then clip it to [0, limit)."""
    centre, half = (lo + hi) / 2, max((hi - lo) * expansion, min_side) / 2
    new_lo = math.floor(centre - half + 1e-9)
    new_hi = math.ceil(centre + half - 1e-9)
    return max(new_lo, 0), min(new_hi, limit)


def roi_coords(box: tuple[int, int, int, int], shape: tuple[int, int], size: int) -> np.ndarray:
    """2×size×size float32 row and column of the ``shape`` slice sampled by each output pixel of the
    ``box`` crop (padded to a square as :func:`~braintumor.data.preprocess.pad_to_square`, then
    resized with pixel centres aligned, ``align_corners=False``); -1/+1 = first/last pixel centre."""
    r0, r1, c0, c1 = box
    side = max(r1 - r0, c1 - c0)
    centres = (np.arange(size) + 0.5) * side / size - 0.5  # in the padded square

    def axis(start: int, extent: int, length: int) -> np.ndarray:
        pos = start - (side - extent) // 2 + centres
        return 2 * pos / max(length - 1, 1) - 1

    rows, cols = axis(r0, r1 - r0, shape[0]), axis(c0, c1 - c0, shape[1])
    grid = np.stack(np.broadcast_arrays(rows[:, None], cols[None, :]))
    return grid.astype(np.float32)


def crop_roi(
    image: np.ndarray, mask: np.ndarray, expansion: float | None, size: int, coords: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the tumour box (see :func:`roi_box`), pad it to a square and resize it.

    Args:
        image: float32 C×H×W.
        mask: H×W (or 1×H×W), nonzero = tumour.
        expansion: box scale factor; None keeps the whole image (pad + resize only).
        size: output side in pixels.
        coords: append the 2 position channels of :func:`roi_coords` after the image channels.

    Returns:
        image float32 (C [+ 2])×size×size and mask uint8 size×size in {0, 1}.
    """
    img = np.asarray(image)
    m = _as_2d_mask(mask)
    if img.ndim != 3:
        raise ValueError(f"image has shape {img.shape}; expected C×H×W (add a channel axis)")
    if img.shape[1:] != m.shape:
        raise ValueError(f"image H×W {img.shape[1:]} differs from mask {m.shape}; they must match")
    if size < 1:
        raise ValueError(f"size={size}; expected a positive side length")
    binary = (m > 0).astype(np.uint8)
    box = (0, m.shape[0], 0, m.shape[1]) if expansion is None else roi_box(binary, expansion)
    r0, r1, c0, c1 = box
    out, out_mask = resize_square(
        img[:, r0:r1, c0:c1].astype(np.float32, copy=False), size, binary[r0:r1, c0:c1]
    )
    if out_mask is None:  # cannot happen: a mask was passed in
        raise RuntimeError("resize_square returned no mask")
    out = out.astype(np.float32, copy=False)
    if coords:
        out = np.concatenate([out, roi_coords(box, m.shape, size)])
    return out, out_mask.astype(np.uint8, copy=False)
