"""The fusion rules: classifier with forest, and an ensemble weighed by the mask's confidence."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.runtime.fusion import confidence_weighted, fuse, mask_confidence, mask_weight, renormalised


def test_fuse_weights_and_renormalises() -> None:
    cnn = np.array([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    forest = np.array([[0.2, 0.6, 0.2], [0.3, 0.3, 0.4]])
    fused = fuse(cnn, forest, 0.75)
    np.testing.assert_allclose(fused, 0.75 * cnn + 0.25 * forest)
    np.testing.assert_allclose(fuse(cnn, forest, 1.0), cnn)
    np.testing.assert_allclose(fuse(cnn, forest, 0.0), forest)
    # classes dropped from both (e.g. a no-tumour column): each side is renormalised first
    dropped = fuse(cnn[:, :2], forest[:, :2], 0.5)
    np.testing.assert_allclose(dropped, 0.5 * renormalised(cnn[:, :2]) + 0.5 * renormalised(forest[:, :2]))
    np.testing.assert_allclose(dropped.sum(axis=1), 1.0)


def test_fuse_refuses_a_weight_outside_0_1() -> None:
    with pytest.raises(ValueError, match="weight_cnn"):
        fuse(np.ones((1, 2)) / 2, np.ones((1, 2)) / 2, 1.5)


def test_mask_confidence_is_the_mean_probability_above_the_threshold() -> None:
    prob = np.array([[0.1, 0.6], [0.8, 1.0]])
    assert mask_confidence(prob, 0.5) == pytest.approx(0.8)
    assert mask_confidence(np.full((2, 2), 0.2), 0.5) == 0.0  # nothing above: no confidence


def test_mask_weight_rises_from_the_floor_to_one() -> None:
    np.testing.assert_allclose(mask_weight(np.array([0.5, 0.9, 0.95, 1.0]), 0.9), [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(mask_weight(np.array([0.0, 0.5]), None), [1.0, 1.0])
    with pytest.raises(ValueError, match="floor"):
        mask_weight(np.array([0.5]), 1.0)


def test_confidence_weighted_trades_the_crop_members_for_the_whole_slice_and_the_gate() -> None:
    crop = [np.array([[0.8, 0.1, 0.1]] * 3), np.array([[0.6, 0.2, 0.2]] * 3)]
    whole = [np.array([[0.1, 0.8, 0.1]] * 3)]
    gate = np.array([[0.1, 0.1, 0.6]] * 3)  # unnormalised: its no-tumour class was dropped
    out = confidence_weighted(crop, whole, gate, np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(out[0], (crop[0][0] + crop[1][0] + whole[0][0]) / 3, rtol=1e-6)  # trusted
    np.testing.assert_allclose(out[1], (whole[0][1] + renormalised(gate)[1]) / 2, rtol=1e-6)  # distrusted
    half = (0.5 * (crop[0][2] + crop[1][2]) + whole[0][2] + 0.5 * renormalised(gate)[2]) / 2.5
    np.testing.assert_allclose(out[2], half, rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    # nothing but crop members: a distrusted mask still gets their plain mean, not a division by 0
    alone = confidence_weighted(crop, [], None, np.zeros(3))
    np.testing.assert_allclose(alone, (crop[0] + crop[1]) / 2, rtol=1e-6)
