"""The fusion rule of a classifier with a region-feature forest: one definition for the analysis
(:class:`~braintumor.inference.pipeline.SliceEngine`) and the fusion experiment
(:mod:`braintumor.experiments.fusion`)."""

from __future__ import annotations

import numpy as np


def renormalised(probs: np.ndarray) -> np.ndarray:
    """B×K probabilities scaled to sum to 1 per row (after classes were dropped)."""
    return probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-12)


def fuse(cnn: np.ndarray, forest: np.ndarray, weight_cnn: float) -> np.ndarray:
    """``weight_cnn`` × the classifier's B×K probabilities + the rest × the forest's, both over the
    same classes and each renormalised first; the result is renormalised too."""
    if not 0.0 <= weight_cnn <= 1.0:
        raise ValueError(f"weight_cnn={weight_cnn}; expected the classifier's share in [0, 1]")
    return renormalised(weight_cnn * renormalised(cnn) + (1.0 - weight_cnn) * renormalised(forest))
