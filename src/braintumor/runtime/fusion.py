"""The fusion rules, one definition each for the analysis
(:class:`~braintumor.inference.pipeline.SliceEngine`) and the experiments that score it: a
classifier with a region-feature forest (:mod:`braintumor.experiments.fusion`), a classifier
ensemble weighted by how far the segmenter's mask can be trusted, and one patient's slices voting
for its class."""

from __future__ import annotations

import numpy as np

MASK_CONFIDENCE_FLOOR = 0.9
"""Default floor of :func:`mask_weight` in new bundles: chosen on the figshare folds by
cross-fitting (each fold's floor picked on the other four folds' patients: 0.9 every time);
docs/RESULTS.md, study 3."""


def renormalised(probs: np.ndarray) -> np.ndarray:
    """B×K probabilities scaled to sum to 1 per row (after classes were dropped)."""
    return probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-12)


def fuse(cnn: np.ndarray, forest: np.ndarray, weight_cnn: float) -> np.ndarray:
    """``weight_cnn`` × the classifier's B×K probabilities + the rest × the forest's, both over the
    same classes and each renormalised first; the result is renormalised too."""
    if not 0.0 <= weight_cnn <= 1.0:
        raise ValueError(f"weight_cnn={weight_cnn}; expected the classifier's share in [0, 1]")
    return renormalised(weight_cnn * renormalised(cnn) + (1.0 - weight_cnn) * renormalised(forest))


def mask_confidence(tumour_probability: np.ndarray, threshold: float) -> float:
    """The segmenter's confidence in its mask: the mean tumour probability over the pixels above
    ``threshold`` (0.0 when none is). A mask drawn on the wrong structure is mostly drawn with
    lower probabilities: on the figshare folds this separates masks that miss the tumour (Dice
    < 0.05) from the rest with ROC-AUC 0.89, where the mask's area reaches 0.68."""
    above = tumour_probability > threshold
    return float(tumour_probability[above].mean()) if above.any() else 0.0


def mask_weight(confidence: np.ndarray, floor: float | None) -> np.ndarray:
    """Weight of the classifiers that read the tumour's crop, per slice: 0 at or below ``floor``,
    rising linearly to 1 at confidence 1 (None: 1 everywhere, the crop is trusted)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if floor is None:
        return np.ones_like(confidence)
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor={floor}; expected a mask confidence in [0, 1)")
    return np.clip((confidence - floor) / (1.0 - floor), 0.0, 1.0)


def confidence_weighted(
    crop_members: list[np.ndarray],
    whole_members: list[np.ndarray],
    gate: np.ndarray | None,
    weight: np.ndarray,
) -> np.ndarray:
    """B×K probabilities of a classifier ensemble when the mask may be wrong: each member that
    reads the tumour's crop counts ``weight`` (per slice, :func:`mask_weight`), each member that
    reads the whole slice counts 1, and the gate's probabilities over the same classes count
    ``1 − weight``. With ``weight`` 1 this is the plain mean of the members; a slice where every
    weight is 0 falls back to that mean. Every input is renormalised first."""
    w = np.asarray(weight, dtype=np.float64)[:, None]
    crop = [renormalised(p) for p in crop_members]
    whole = [renormalised(p) for p in whole_members]
    total = w * sum(crop, np.zeros_like(w)) + sum(whole, np.zeros_like(w))
    mass = w * len(crop) + len(whole)
    if gate is not None:
        total = total + (1.0 - w) * renormalised(gate)
        mass = mass + (1.0 - w)
    plain = renormalised(sum(crop + whole, np.zeros_like(w)))
    safe = np.maximum(mass, 1e-12)
    return np.where(mass > 1e-12, total / safe, plain).astype(np.float32)


def consensus(probs: np.ndarray) -> np.ndarray:
    """One patient's (or volume's) K class probabilities from its slices' N×K rows: their mean
    (soft voting; a patient has one tumour). ``analyze`` labels a volume so
    (:func:`~braintumor.inference.results.summarize`), and the evaluation scores every slice with
    its patient's (:func:`~braintumor.evaluation.classification.patient_consensus`)."""
    rows = np.asarray(probs, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"expected N×K probabilities with N >= 1, got shape {rows.shape}")
    return rows.mean(axis=0)
