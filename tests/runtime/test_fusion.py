"""The one fusion rule: weighted mean of renormalised classifier and forest probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.runtime.fusion import fuse, renormalised


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
