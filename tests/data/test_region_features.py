"""Region features (where, how large, how bright) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.data.region_features import FEATURES, region_features


def _slice() -> tuple[np.ndarray, np.ndarray]:
    """A 10×20 slice: background 0 in the left 8 columns, head 1.0 elsewhere, and a 2×3 tumour of
    intensity 3.0 at rows 6-7, columns 15-17."""
    image = np.zeros((10, 20))
    image[:, 8:] = 1.0
    mask = np.zeros((10, 20), np.uint8)
    mask[6:8, 15:18] = 1
    image[mask > 0] = 3.0
    return image, mask


def test_features_by_hand() -> None:
    image, mask = _slice()
    f = region_features(image, mask)
    assert list(f) == list(FEATURES)
    # Head = above the 30th percentile (0: 40 % of pixels are 0) = columns 8-19, tumour included.
    head_row, head_col = 4.5, 13.5
    assert f["area_fraction"] == pytest.approx(6 / 200)
    assert f["row"] == pytest.approx(6.5 / 10) and f["col"] == pytest.approx(16 / 20)
    assert f["row_offset"] == pytest.approx((6.5 - head_row) / 10)
    assert f["col_offset"] == pytest.approx(abs(16 - head_col) / 20)
    assert f["box_height"] == pytest.approx(2 / 10) and f["box_width"] == pytest.approx(3 / 20)
    head_mean = (114 * 1.0 + 6 * 3.0) / 120
    assert f["intensity_ratio"] == pytest.approx(3.0 / head_mean)
    assert f["intensity_spread"] == pytest.approx(0.0)


def test_mirrored_tumour_has_the_same_midline_distance() -> None:
    image, mask = _slice()
    image[:, :8] = 1.0  # a symmetric head
    left, right = region_features(image[:, ::-1], mask[:, ::-1]), region_features(image, mask)
    assert left["col_offset"] == pytest.approx(right["col_offset"])
    assert left["col"] == pytest.approx((19 - 16) / 20) and right["col"] == pytest.approx(16 / 20)


def test_channels_are_averaged_and_bad_input_is_refused() -> None:
    image, mask = _slice()
    rgb = np.repeat(image[..., None], 3, axis=2)
    assert region_features(rgb, mask) == pytest.approx(region_features(image, mask))
    with pytest.raises(ValueError, match="empty"):
        region_features(image, np.zeros_like(mask))
    with pytest.raises(ValueError, match="must match"):
        region_features(image, mask[:5])
    with pytest.raises(ValueError, match="constant"):
        region_features(np.ones((10, 20)), mask)
