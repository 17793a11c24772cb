"""Full-resolution RGB overlays (no matplotlib): truth in green, prediction in red outlines."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def to_gray_uint8(array: np.ndarray) -> np.ndarray:
    """H×W or H×W×C image -> H×W uint8 (FLAIR channel for 3-channel LGG slices), 1-99 % window."""
    plane = array[..., 1] if array.ndim == 3 and array.shape[2] == 3 else array
    plane = plane.astype(np.float32)
    lo, hi = np.percentile(plane, (1, 99))
    return (np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean boundary pixels of a binary mask."""
    m = mask.astype(bool)
    return m & ~ndimage.binary_erosion(m, iterations=width)


def overlay_rgb(
    array: np.ndarray, pred: np.ndarray | None = None, truth: np.ndarray | None = None, width: int = 1
) -> np.ndarray:
    """H×W×3 uint8 image with the truth outlined green and the prediction outlined red."""
    gray = to_gray_uint8(array)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    if truth is not None:
        rgb[outline(truth, width)] = (0, 220, 0)
    if pred is not None:
        rgb[outline(pred, width)] = (255, 40, 40)
    return rgb
