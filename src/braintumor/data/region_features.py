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

from braintumor.data.preprocess import percentiles_of
from braintumor.data.roi import foreground_box

FEATURES = (
    "area_fraction", "row", "col", "row_offset", "col_offset", "box_height", "box_width",
    "intensity_ratio", "intensity_spread",
)  # fmt: skip
HEAD_PERCENTILE = 30.0


def _grey(image: np.ndarray) -> np.ndarray:
    """H×W from an H×W (kept as is), H×W×C (C ≤ 4) or C×H×W array (channel mean, float64)."""
    img = np.asarray(image)
    if img.ndim == 2:
        return img
    if img.ndim == 3:
        return img.mean(axis=-1) if img.shape[-1] <= 4 else img.mean(axis=0)
    raise ValueError(f"image has shape {img.shape}; expected H×W, H×W×C or C×H×W")


def _centroid(binary: np.ndarray) -> tuple[float, float]:
    """(row, column) centroid of a non-empty H×W boolean array, from its row and column counts."""
    rows, cols = binary.sum(axis=1), binary.sum(axis=0)
    total = float(rows.sum())
    return float(rows @ np.arange(len(rows))) / total, float(cols @ np.arange(len(cols))) / total


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
    box = foreground_box(tumour)
    if box is None:
        raise ValueError("mask is empty: region features need a tumour")
    head = grey > percentiles_of(grey.ravel(), [HEAD_PERCENTILE])[0]
    if not head.any():
        raise ValueError("the slice is constant: no head to measure the tumour against")
    h, w = grey.shape
    row, col = _centroid(tumour[box])
    row, col = row + box[0].start, col + box[1].start
    head_row, head_col = _centroid(head)
    head_mean = float(grey[head].mean(dtype=np.float64)) or 1.0
    inside = grey[box][tumour[box]].astype(np.float64)
    return {
        "area_fraction": float(tumour[box].sum()) / (h * w),
        "row": row / h,
        "col": col / w,
        "row_offset": (row - head_row) / h,
        "col_offset": abs(col - head_col) / w,
        "box_height": float(box[0].stop - box[0].start) / h,
        "box_width": float(box[1].stop - box[1].start) / w,
        "intensity_ratio": float(inside.mean()) / head_mean,
        "intensity_spread": float(inside.std()) / head_mean,
    }
