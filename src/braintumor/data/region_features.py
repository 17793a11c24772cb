"""Where the tumour sits, how large it is and how bright: nine hand-made features of one slice.

A tumour-region crop resized to 128² keeps the tumour's appearance but loses its position and its
size, which tell tumour types apart (pituitary tumours are small, midline and low in the skull;
meningiomas sit against the skull or the falx). These features put them back, for a classical
classifier beside the CNN (see :mod:`braintumor.experiments.fusion`). From the slice's first channel
(or the channel mean) and the tumour mask at the slice's own resolution:

* ``area_fraction``: tumour pixels / slice pixels;
* ``row``, ``col``: tumour centroid / slice height, width (0 = top / left, 1 = bottom / right);
* ``row_offset``: (tumour centroid row - head centroid row) / height;
* ``col_offset``: \\|tumour centroid column - head centroid column\\| / width (distance from the midline,
  so left and right tumours look alike);
* ``box_height``, ``box_width``: the tumour's bounding box / slice height, width;
* ``intensity_ratio``, ``intensity_spread``: mean and standard deviation of the tumour's intensities
  divided by the head's mean intensity.

"Head" is every pixel above the slice's 30th intensity percentile: a crude foreground that only has
to locate the head's centre and typical brightness, and needs no skull stripping.
"""

from __future__ import annotations

import numpy as np

FEATURES = (
    "area_fraction", "row", "col", "row_offset", "col_offset", "box_height", "box_width",
    "intensity_ratio", "intensity_spread",
)  # fmt: skip
HEAD_PERCENTILE = 30.0


def _grey(image: np.ndarray) -> np.ndarray:
    """H×W float64 from an H×W, H×W×C (C ≤ 4) or C×H×W array (channel mean)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        return img
    if img.ndim == 3:
        return img.mean(axis=-1) if img.shape[-1] <= 4 else img.mean(axis=0)
    raise ValueError(f"image has shape {img.shape}; expected H×W, H×W×C or C×H×W")


def region_features(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The nine :data:`FEATURES` of one slice.

    Args:
        image: the slice, H×W or H×W×C / C×H×W (channels are averaged), any intensity scale.
        mask: H×W, nonzero = tumour.

    Raises:
        ValueError: shapes differ, the mask is empty, or the slice is constant (no head to find).
    """
    grey = _grey(image)
    tumour = np.asarray(mask) > 0
    if tumour.shape != grey.shape:
        raise ValueError(f"mask has shape {tumour.shape} but the image is {grey.shape}; they must match")
    if not tumour.any():
        raise ValueError("mask is empty: region features need a tumour")
    head = grey > np.percentile(grey, HEAD_PERCENTILE)
    if not head.any():
        raise ValueError("the slice is constant: no head to measure the tumour against")
    h, w = grey.shape
    rows, cols = np.nonzero(tumour)
    head_rows, head_cols = np.nonzero(head)
    head_mean = float(grey[head].mean()) or 1.0
    inside = grey[tumour]
    return {
        "area_fraction": float(tumour.sum()) / (h * w),
        "row": float(rows.mean()) / h,
        "col": float(cols.mean()) / w,
        "row_offset": float(rows.mean() - head_rows.mean()) / h,
        "col_offset": abs(float(cols.mean() - head_cols.mean())) / w,
        "box_height": float(rows.max() - rows.min() + 1) / h,
        "box_width": float(cols.max() - cols.min() + 1) / w,
        "intensity_ratio": float(inside.mean()) / head_mean,
        "intensity_spread": float(inside.std()) / head_mean,
    }
