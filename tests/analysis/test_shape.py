"""Shape features against values computed by hand on synthetic masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import draw

from braintumor.analysis.shape import (
    SHAPE_FEATURES,
    SLICE_FEATURES,
    slice_features,
    volume_feature_names,
    volume_features,
)


def disc(radius: float, size: int = 64, centre: tuple[int, int] | None = None) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    rr, cc = draw.disk(centre or (size // 2, size // 2), radius, shape=mask.shape)
    mask[rr, cc] = 1
    return mask


def ellipse(a: float, b: float, size: int = 120, rotation: float = 0.0) -> np.ndarray:
    """Semi-axes ``a`` (along columns before rotation) and ``b``."""
    mask = np.zeros((size, size), np.uint8)
    rr, cc = draw.ellipse(size // 2, size // 2, b, a, shape=mask.shape, rotation=rotation)
    mask[rr, cc] = 1
    return mask


def test_disc_is_round_convex_and_smooth() -> None:
    f = slice_features(disc(20))
    assert f["area_px"] == pytest.approx(math.pi * 20**2, rel=0.02)
    assert f["perimeter_px"] == pytest.approx(2 * math.pi * 20, rel=0.03)
    assert f["circularity"] == pytest.approx(1.0, abs=0.05)
    assert f["eccentricity"] == pytest.approx(0.0, abs=0.05)
    assert f["solidity"] == pytest.approx(1.0, abs=0.03)
    assert f["axis_ratio"] == pytest.approx(1.0, abs=0.02)
    assert f["angular_sd"] < 0.02
    assert f["margin_fluctuation"] < 0.015


@pytest.mark.parametrize(("a", "b", "rotation"), [(24, 12, 0.0), (24, 12, 0.7), (40, 10, 0.3)])
def test_ellipse_axes_eccentricity_and_angular_sd(a: float, b: float, rotation: float) -> None:
    f = slice_features(ellipse(a, b, rotation=rotation))
    assert f["axis_ratio"] == pytest.approx(a / b, rel=0.03)
    assert f["eccentricity"] == pytest.approx(math.sqrt(1 - (b / a) ** 2), abs=0.01)
    # r(θ) = ab / sqrt((b cos θ)² + (a sin θ)²) of the exact ellipse, sampled over angles
    theta = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    radius = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    assert f["angular_sd"] == pytest.approx(radius.std() / radius.mean(), abs=0.01)
    assert f["solidity"] > 0.95


def test_ragged_margin_fluctuates_more_than_a_smooth_one() -> None:
    theta = np.linspace(0, 2 * np.pi, 720)
    radius = 25 + 3 * np.sin(15 * theta)
    star = np.zeros((80, 80), np.uint8)
    rr, cc = draw.polygon(40 + radius * np.sin(theta), 40 + radius * np.cos(theta), star.shape)
    star[rr, cc] = 1
    ragged, smooth = slice_features(star), slice_features(disc(25, size=80))
    assert ragged["margin_fluctuation"] > 4 * smooth["margin_fluctuation"]
    assert ragged["solidity"] < smooth["solidity"]
    assert ragged["circularity"] < 0.6


def test_empty_mask_gives_nan_shape_and_zero_area() -> None:
    f = slice_features(np.zeros((32, 32), np.uint8))
    assert f["area_px"] == 0
    assert all(math.isnan(f[name]) for name in SHAPE_FEATURES)
    assert set(f) == set(SLICE_FEATURES)


def test_shape_uses_the_largest_component_and_fills_holes() -> None:
    mask = disc(15, size=64, centre=(20, 20))
    mask += disc(4, size=64, centre=(52, 52))
    holed = mask.copy()
    holed[18:22, 18:22] = 0
    f, g = slice_features(mask), slice_features(holed)
    assert f["area_px"] == mask.sum()
    assert f["circularity"] == pytest.approx(1.0, abs=0.05)
    assert g["perimeter_px"] == pytest.approx(f["perimeter_px"])


def test_volume_sums_slices_and_takes_the_largest_slice() -> None:
    stack = [np.zeros((64, 64), np.uint8), disc(10), disc(20), ellipse(20, 10, size=64)]
    v = volume_features(stack, slice_numbers=[5, 6, 7, 8], pixel_mm=0.5, slice_mm=2.0)
    areas = [float(m.sum()) for m in stack]
    assert v["volume_px"] == sum(areas)
    assert v["n_tumour_slices"] == 3
    assert v["max_slice"] == 7
    assert v["max_area_px"] == max(areas)
    assert v["max_area_mm2"] == pytest.approx(max(areas) * 0.25)
    assert v["volume_mm3"] == pytest.approx(sum(areas) * 0.25 * 2.0)
    per = [slice_features(m) for m in stack[1:]]
    expected = np.average([p["eccentricity"] for p in per], weights=areas[1:])
    assert v["wmean_eccentricity"] == pytest.approx(expected)


def test_volume_without_tumour_is_all_nan() -> None:
    v = volume_features([np.zeros((16, 16), np.uint8)] * 3)
    assert v["volume_px"] == 0 and v["n_tumour_slices"] == 0
    assert list(v) == volume_feature_names()
    assert all(math.isnan(v[k]) for k in volume_feature_names() if k not in ("volume_px", "n_tumour_slices"))


def test_rejects_a_volume_as_a_slice() -> None:
    with pytest.raises(ValueError, match="H×W"):
        slice_features(np.zeros((2, 8, 8)))
