"""Tumour shape features from binary masks: one 2D slice, and one patient's stack of slices.

Per slice, ``area_px`` counts every tumour pixel; the shape features describe the slice's largest
connected component (8-connectivity) with its holes filled, as Buda et al. (2019) describe the
tumour outline: ``perimeter_px`` (scikit-image's Crofton estimate, which is within a few per cent
of the true length for smooth outlines where the 4-neighbour count is 5 % short on a disc),
``circularity`` (4πA/P², 1 for a disc), ``solidity`` (area / convex-hull area), ``eccentricity``
of the moment ellipse (0 for a disc), ``axis_ratio`` (major / minor axis of the moment ellipse),
``angular_sd`` (standard deviation of the centroid-to-boundary distance over equally spaced
angles, divided by its mean) and ``margin_fluctuation`` (standard deviation of that normalised
radial profile minus its circular moving average over :data:`SMOOTH_DEGREES`).

Per patient, :func:`volume_features` reports the volume in voxels, the number of tumour slices,
every slice feature on the largest-tumour slice (``max_*``) and the area-weighted mean of each
shape feature over the tumour slices (``wmean_*``). In-plane spacing and slice thickness are not
published with the LGG release, so truly 3D shape descriptors (surface, 3D solidity) would mix
units; physical units are added only when the caller gives the spacing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage import measure

N_ANGLES = 360
SMOOTH_DEGREES = 20
MIN_SHAPE_AREA = 10  # pixels; smaller components have no meaningful outline
SHAPE_FEATURES = (
    "perimeter_px", "circularity", "solidity", "eccentricity", "axis_ratio", "angular_sd",
    "margin_fluctuation",
)  # fmt: skip
SLICE_FEATURES = ("area_px", *SHAPE_FEATURES)


def _nan_features() -> dict[str, float]:
    return {name: math.nan for name in SHAPE_FEATURES}


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels = measure.label(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(ndimage.binary_fill_holes(labels == int(sizes.argmax())))


def radial_profile(component: np.ndarray, n_angles: int = N_ANGLES) -> np.ndarray:
    """Centroid-to-boundary distance at ``n_angles`` equally spaced angles (float64, pixels).

    The outline is the 0.5 iso-contour of the component, densified to 0.25 px steps; each angular
    bin takes the mean distance of its outline points, and empty bins (large tumours, few points)
    are filled by circular linear interpolation.
    """
    padded = np.pad(component.astype(float), 1)
    contour = max(measure.find_contours(padded, 0.5), key=len)
    steps = np.maximum(np.ceil(np.linalg.norm(np.diff(contour, axis=0), axis=1) / 0.25), 1).astype(int)
    dense = np.concatenate(
        [
            np.linspace(a, b, n, endpoint=False)
            for a, b, n in zip(contour[:-1], contour[1:], steps, strict=True)
        ]
    )
    rows, cols = np.nonzero(padded)
    dy, dx = dense[:, 0] - rows.mean(), dense[:, 1] - cols.mean()
    theta = np.mod(np.arctan2(dy, dx), 2 * np.pi)
    bins = np.minimum((theta / (2 * np.pi) * n_angles).astype(int), n_angles - 1)
    radius = np.hypot(dy, dx)
    counts = np.bincount(bins, minlength=n_angles)
    sums = np.bincount(bins, weights=radius, minlength=n_angles)
    centres = (np.arange(n_angles) + 0.5) * 2 * np.pi / n_angles
    filled = counts > 0
    return np.interp(centres, centres[filled], sums[filled] / counts[filled], period=2 * np.pi)


def angular_sd(profile: np.ndarray) -> float:
    """Standard deviation of the radial profile divided by its mean (0 for a circle)."""
    return float(np.std(profile) / np.mean(profile))


def margin_fluctuation(profile: np.ndarray, smooth_degrees: float = SMOOTH_DEGREES) -> float:
    """Standard deviation of (profile − circular moving average), both divided by the mean radius."""
    normalised = profile / np.mean(profile)
    window = max(1, round(smooth_degrees / 360 * profile.size))
    smoothed = ndimage.uniform_filter1d(normalised, size=window, mode="wrap")
    return float(np.std(normalised - smoothed))


def slice_features(mask: np.ndarray) -> dict[str, float]:
    """Shape features of one H×W binary mask (any dtype; nonzero = tumour).

    Returns:
        :data:`SLICE_FEATURES` as floats; ``area_px`` is 0 and every shape feature NaN for an empty
        mask, and the shape features are NaN when the largest component is under
        :data:`MIN_SHAPE_AREA` pixels.
    """
    plane = np.asarray(mask).astype(bool)
    if plane.ndim != 2:
        raise ValueError(f"slice_features needs an H×W mask, got shape {plane.shape}")
    features: dict[str, float] = {"area_px": float(plane.sum()), **_nan_features()}
    if features["area_px"] == 0:
        return features
    component = _largest_component(plane)
    props = measure.regionprops(component.astype(np.uint8))[0]
    if props.area < MIN_SHAPE_AREA:
        return features
    perimeter = float(props.perimeter_crofton)
    minor = float(props.axis_minor_length)
    profile = radial_profile(component)
    features.update(
        perimeter_px=perimeter,
        circularity=4 * math.pi * float(props.area) / perimeter**2 if perimeter > 0 else math.nan,
        solidity=float(props.solidity),
        eccentricity=float(props.eccentricity),
        axis_ratio=float(props.axis_major_length) / minor if minor > 0 else math.nan,
        angular_sd=angular_sd(profile),
        margin_fluctuation=margin_fluctuation(profile),
    )
    return features


def volume_feature_names() -> list[str]:
    """Column names of :func:`volume_features`, in order."""
    names = ["volume_px", "n_tumour_slices", "max_slice"]
    names += [f"max_{f}" for f in SLICE_FEATURES]
    names += [f"wmean_{f}" for f in SHAPE_FEATURES]
    return names


def volume_features(
    masks: Sequence[np.ndarray],
    slice_numbers: Sequence[int] | None = None,
    pixel_mm: float | None = None,
    slice_mm: float | None = None,
) -> dict[str, float]:
    """Features of one patient's masks (H×W each, in slice order).

    Args:
        masks: the patient's slices; slices without tumour count towards nothing but the total.
        slice_numbers: the slice number of each mask (default 1..N), reported as ``max_slice``.
        pixel_mm: in-plane pixel side in mm; adds ``max_area_mm2``.
        slice_mm: slice spacing in mm; with ``pixel_mm`` adds ``volume_mm3``.

    Returns:
        ``volume_px`` (tumour voxels), ``n_tumour_slices``, ``max_slice`` and ``max_<feature>``
        (the largest-tumour slice) and ``wmean_<shape feature>`` (weighted by each slice's tumour
        area, over slices where the feature is defined). All NaN but ``volume_px`` = 0 and
        ``n_tumour_slices`` = 0 when no slice holds tumour.
    """
    numbers = list(slice_numbers) if slice_numbers is not None else list(range(1, len(masks) + 1))
    per_slice = [slice_features(m) for m in masks]
    areas = np.array([f["area_px"] for f in per_slice])
    result = dict.fromkeys(volume_feature_names(), math.nan)
    result.update(volume_px=float(areas.sum()), n_tumour_slices=float((areas > 0).sum()))
    if pixel_mm is not None:
        result["max_area_mm2"] = math.nan
        if slice_mm is not None:
            result["volume_mm3"] = result["volume_px"] * pixel_mm**2 * slice_mm
    if result["volume_px"] == 0:
        return result
    best = int(areas.argmax())
    result["max_slice"] = float(numbers[best])
    result.update({f"max_{k}": v for k, v in per_slice[best].items()})
    if pixel_mm is not None:
        result["max_area_mm2"] = result["max_area_px"] * pixel_mm**2
    for name in SHAPE_FEATURES:
        values = np.array([f[name] for f in per_slice])
        ok = np.isfinite(values) & (areas > 0)
        if ok.any():
            result[f"wmean_{name}"] = float(np.average(values[ok], weights=areas[ok]))
    return result
