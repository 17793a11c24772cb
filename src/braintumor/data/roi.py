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
"""

from __future__ import annotations

import math

import numpy as np

from braintumor.data.preprocess import resize_square

MIN_SIDE = 8


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


def crop_roi(
    image: np.ndarray, mask: np.ndarray, expansion: float | None, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the tumour box (see :func:`roi_box`), pad it to a square and resize it.

    Args:
        image: float32 C×H×W.
        mask: H×W (or 1×H×W), nonzero = tumour.
        expansion: box scale factor; None keeps the whole image (pad + resize only).
        size: output side in pixels.

    Returns:
        image float32 C×size×size and mask uint8 size×size in {0, 1}.
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
    if expansion is not None:
        r0, r1, c0, c1 = roi_box(binary, expansion)
        img, binary = img[:, r0:r1, c0:c1], binary[r0:r1, c0:c1]
    out, out_mask = resize_square(img.astype(np.float32, copy=False), size, binary)
    if out_mask is None:  # cannot happen: a mask was passed in
        raise RuntimeError("resize_square returned no mask")
    return out.astype(np.float32, copy=False), out_mask.astype(np.uint8, copy=False)
