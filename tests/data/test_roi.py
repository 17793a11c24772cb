"""Tumour ROI boxes and crops."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.data.phantom import make_phantom
from braintumor.data.roi import crop_roi, roi_box


def box_mask(r0: int, r1: int, c0: int, c1: int, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[r0:r1, c0:c1] = 1
    return mask


def test_tight_box() -> None:
    assert roi_box(box_mask(10, 20, 20, 30), 1.0) == (10, 20, 20, 30)
    assert roi_box(box_mask(10, 20, 20, 30)[None] * 255) == (10, 20, 20, 30)  # 1×H×W, {0,255}


def test_expansion_two_doubles_about_the_centre() -> None:
    # rows [10, 20): centre 15, height 10 -> 20 -> [5, 25); cols [20, 34): centre 27, 14 -> 28
    assert roi_box(box_mask(10, 20, 20, 34), 2.0) == (5, 25, 13, 41)
    # 1.5 x a 12-px side: [20, 32) -> centre 26, side 18 -> [17, 35)
    assert roi_box(box_mask(20, 32, 20, 32), 1.5) == (17, 35, 17, 35)


def test_box_is_clipped_not_shifted_at_the_border() -> None:
    # rows [0, 4): centre 2, side 8 -> [-2, 6) -> [0, 6); cols [60, 64): [58, 66) -> [58, 64)
    assert roi_box(box_mask(0, 4, 60, 64), 2.0) == (0, 6, 58, 64)


def test_minimum_side_for_tiny_tumours() -> None:
    # one pixel [30, 31): centre 30.5, side 8 -> [26.5, 34.5) -> widened outwards to [26, 35)
    assert roi_box(box_mask(30, 31, 30, 31), 1.0) == (26, 35, 26, 35)
    assert roi_box(box_mask(30, 32, 30, 32), 1.0) == (27, 35, 27, 35)
    assert roi_box(box_mask(30, 31, 30, 31), 1.0, min_side=1) == (30, 31, 30, 31)


def test_empty_mask_and_bad_expansion() -> None:
    with pytest.raises(ValueError, match="mask is empty"):
        roi_box(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="expansion"):
        roi_box(box_mask(1, 5, 1, 5), 0.5)


@pytest.mark.parametrize("expansion", [None, 1.0, 1.5, 3.0])
def test_crop_shapes_and_binary_mask(expansion: float | None) -> None:
    image, mask = make_phantom(np.random.default_rng(2), "meningioma", 64, 3)
    crop, crop_mask = crop_roi(image, mask, expansion, 48)
    assert crop.shape == (3, 48, 48) and crop.dtype == np.float32
    assert crop_mask.shape == (48, 48) and crop_mask.dtype == np.uint8
    assert set(np.unique(crop_mask)) <= {0, 1} and crop_mask.any()


def test_crop_content() -> None:
    image = np.zeros((1, 64, 64), np.float32)
    mask = box_mask(16, 32, 24, 40)
    image[0][mask > 0] = 1.0
    crop, crop_mask = crop_roi(image, mask, 1.0, 32)  # tight square box fills the output
    assert crop_mask.all() and crop.min() > 0.99
    crop, crop_mask = crop_roi(image, mask, 2.0, 32)  # tumour = central half of each side
    assert crop_mask[8:24, 8:24].all() and crop_mask.sum() == 16 * 16
    _, whole_mask = crop_roi(image, mask, None, 32)
    assert whole_mask.sum() == 8 * 8 and np.array_equal(whole_mask, mask[::2, ::2])


def test_non_square_box_is_padded_not_stretched() -> None:
    mask = box_mask(20, 28, 10, 42)  # 8 × 32
    _, crop_mask = crop_roi(np.ones((1, 64, 64), np.float32), mask, 1.0, 32)
    rows = np.nonzero(crop_mask.any(axis=1))[0]
    assert crop_mask.all(axis=0).sum() == 0 and len(rows) == 8  # 32 wide -> 8 rows tall


def test_shape_mismatch_is_explained() -> None:
    with pytest.raises(ValueError, match="differs from mask"):
        crop_roi(np.zeros((1, 32, 32), np.float32), np.ones((16, 16), np.uint8), 1.0, 16)
