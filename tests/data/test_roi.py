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


def test_coords_inside_a_square_box() -> None:
    # 65×65 slice: -1..1 over 64 pixel steps. Tight 16 px box, same output size: no resampling.
    mask = box_mask(16, 32, 24, 40, (65, 65))
    crop, _ = crop_roi(np.zeros((1, 65, 65), np.float32), mask, 1.0, 16, coords=True)
    assert crop.shape == (3, 16, 16) and crop.dtype == np.float32
    assert crop[1, 4, 7] == pytest.approx(2 * 20 / 64 - 1) and crop[2, 4, 7] == pytest.approx(2 * 31 / 64 - 1)
    assert np.allclose(crop[1], crop[1][:, :1]) and np.allclose(crop[2], crop[2][:1])  # rows / columns
    # Upsampled 2x (align_corners=False): output pixel j samples box position (j + 0.5) / 2 - 0.5.
    crop, _ = crop_roi(np.zeros((1, 65, 65), np.float32), mask, 1.0, 32, coords=True)
    assert crop[1, 0, 0] == pytest.approx(2 * 15.75 / 64 - 1) and crop[1, 31, 0] == pytest.approx(
        2 * 31.25 / 64 - 1
    )
    assert crop[2, 0, 9] == pytest.approx(2 * (24 + 4.25) / 64 - 1)


def test_coords_extrapolate_into_the_padding() -> None:
    # An 8×32 box is padded by 12 rows above and below: output row 0 samples slice row 20 - 12 = 8.
    mask = box_mask(20, 28, 10, 42, (65, 65))
    crop, _ = crop_roi(np.zeros((1, 65, 65), np.float32), mask, 1.0, 32, coords=True)
    assert np.allclose(crop[1, :, 0], 2 * (8 + np.arange(32)) / 64 - 1)
    assert np.allclose(crop[2, 0], 2 * (10 + np.arange(32)) / 64 - 1)


def test_coords_of_a_border_clipped_box() -> None:
    # rows [0, 2) x2 -> side 8 -> [-3, 5) clipped to [0, 5); cols [30, 34) -> [28, 36). The 5×8 box
    # is padded by (8 - 5) // 2 = 1 row on top, so output row 0 samples row -1, outside the slice.
    mask = box_mask(0, 2, 30, 34, (65, 65))
    crop, _ = crop_roi(np.zeros((1, 65, 65), np.float32), mask, 2.0, 8, coords=True)
    assert np.allclose(crop[1, :, 3], 2 * (np.arange(8) - 1) / 64 - 1) and crop[1, 0, 0] < -1
    assert np.allclose(crop[2, 5], 2 * (28 + np.arange(8)) / 64 - 1)
    # rows [0, 4) and cols [61, 65) x2 -> box (0, 6, 59, 65); 6 px -> 12 px samples (j + 0.5) / 2 - 0.5
    crop, _ = crop_roi(
        np.zeros((1, 65, 65), np.float32), box_mask(0, 4, 61, 65, (65, 65)), 2.0, 12, coords=True
    )
    assert crop[1, 0, 0] == pytest.approx(2 * -0.25 / 64 - 1) and crop[2, 0, 11] == pytest.approx(
        2 * 64.25 / 64 - 1
    )


def test_coords_of_the_whole_slice() -> None:
    # 33 rows × 65 columns: padded by 16 rows above; 65 -> 13 px samples every 5th pixel from 2.
    mask = box_mask(10, 12, 10, 12, (33, 65))
    crop, _ = crop_roi(np.zeros((2, 33, 65), np.float32), mask, None, 13, coords=True)
    assert crop.shape == (4, 13, 13)
    assert np.allclose(crop[2, :, 0], 2 * (5 * np.arange(13) + 2 - 16) / 32 - 1)
    assert np.allclose(crop[3, 0], 2 * (5 * np.arange(13) + 2) / 64 - 1)


def test_coords_match_the_resize_and_keep_the_image() -> None:
    image, mask = make_phantom(np.random.default_rng(2), "meningioma", 64, 3)
    plain, plain_mask = crop_roi(image, mask, 1.5, 48)
    with_coords, coords_mask = crop_roi(image, mask, 1.5, 48, coords=True)
    assert with_coords.shape == (5, 48, 48) and with_coords.dtype == np.float32
    assert np.array_equal(with_coords[:3], plain) and np.array_equal(coords_mask, plain_mask)
    # Ramps holding each pixel's normalised row/column, cropped like an image, equal the coords
    # wherever no padding or image border enters the interpolation.
    ramps = np.stack(np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")).astype(
        np.float32
    )
    square = box_mask(20, 36, 20, 36)
    resized, _ = crop_roi(ramps, square, 1.0, 40, coords=True)
    assert np.allclose(resized[:2, 2:-2, 2:-2], resized[2:, 2:-2, 2:-2], atol=1e-5)
    shrunk, _ = crop_roi(ramps, box_mask(8, 40, 8, 40), 1.0, 12, coords=True)  # antialiased: ~1e-3
    assert np.allclose(shrunk[:2, 2:-2, 2:-2], shrunk[2:, 2:-2, 2:-2], atol=2e-3)


def test_roi_coords_config() -> None:
    from braintumor.config import DataConfig, Preprocessing
    from braintumor.data.roi import coord_channels
    from braintumor.errors import ConfigError

    with pytest.raises(ConfigError, match="roi_coords"):
        DataConfig(roi_coords=True)
    assert Preprocessing(roi_expansion=1.5, roi_coords=True).to_dict()["roi_coords"] is True
    assert coord_channels({"roi_coords": True}) == 2 and coord_channels({}) == 0  # old records: no key
