"""Classification metrics on a hand-counted 3-class example."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from braintumor.evaluation import (
    ClassificationAccumulator,
    classification_report,
    consensus_report,
    expected_calibration_error,
    patient_consensus,
)

CLASSES = ["glioma", "meningioma", "pituitary"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def _probs(pred: np.ndarray, top: float = 0.8) -> np.ndarray:
    probs = np.full((pred.size, 3), (1 - top) / 2)
    probs[np.arange(pred.size), pred] = top
    return probs


def test_report_matches_hand_counts() -> None:
    report = classification_report(Y_TRUE, _probs(Y_PRED), CLASSES)
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    # recall 2/3, 1/2, 1 -> mean
    assert report["balanced_accuracy"] == pytest.approx(13 / 18)
    # F1 0.8, 0.5, 2/3 -> mean
    assert report["macro_f1"] == pytest.approx(59 / 90)
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["per_class"]["glioma"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert report["per_class"]["pituitary"]["precision"] == pytest.approx(0.5)
    # every confidence is 0.8, accuracy 2/3
    assert report["ece"] == pytest.approx(2 / 15)
    assert isinstance(report["roc_auc_ovr"], float)
    json.dumps(report)


def test_roc_auc_perfect_and_absent_class() -> None:
    perfect = classification_report(Y_TRUE, _probs(Y_TRUE), CLASSES)
    assert perfect["roc_auc_ovr"] == pytest.approx(1.0)
    absent = classification_report(Y_TRUE[:5], _probs(Y_TRUE[:5]), CLASSES)
    assert absent["roc_auc_ovr"] is None
    binary = classification_report([0, 1, 1], [[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]], ["no", "yes"])
    assert binary["roc_auc_ovr"] == pytest.approx(1.0)


def test_ece_hand_computed_two_bins() -> None:
    probs = np.array([[0.1, 0.9], [0.1, 0.9], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([1, 0, 0, 1])
    # bin (0.867, 0.933]: acc 0.5, conf 0.9 -> 2/4 * 0.4; bin (0.533, 0.6]: acc 1, conf 0.55
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5 * 0.4 + 0.5 * 0.45)


def test_unnormalised_probs_are_rejected() -> None:
    with pytest.raises(ValueError, match="softmax"):
        classification_report(Y_TRUE, _probs(Y_PRED) * 3, CLASSES)


def test_accumulator_softmaxes_logits() -> None:
    logits = torch.log(torch.from_numpy(_probs(Y_PRED))) + 2.0  # softmax gives back _probs
    acc = ClassificationAccumulator(CLASSES)
    acc.add(logits[:4], torch.from_numpy(Y_TRUE[:4]), ["a", "b", "c", "d"])
    acc.add(logits[4:], Y_TRUE[4:], ["e", "f"])
    expected = classification_report(Y_TRUE, _probs(Y_PRED), CLASSES)
    report = acc.report()
    assert report["confusion"] == expected["confusion"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc_ovr", "ece"):
        assert report[key] == pytest.approx(expected[key]), key
    table = acc.per_sample()
    assert table["sample_id"].tolist() == list("abcdef")
    assert table["correct"].sum() == 4
    assert table["prob_glioma"].iloc[0] == pytest.approx(0.8)

    as_probs = ClassificationAccumulator(CLASSES, inputs="probs")
    as_probs.add(_probs(Y_PRED), Y_TRUE, list("abcdef"))
    assert as_probs.report()["confusion"] == expected["confusion"]


def test_patient_consensus_averages_each_patients_rows() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    out = patient_consensus(probs, ["a", "a", "a", "b"])
    assert out[:3] == pytest.approx(np.tile([0.5, 0.5], (3, 1)))
    assert out[3] == pytest.approx([0.7, 0.3])  # a patient of one slice keeps its own
    with pytest.raises(ValueError, match="patient ids"):
        patient_consensus(probs, ["a", "b"])


def test_consensus_report_hand_counts() -> None:
    # patient p1 (glioma): 2 of 3 slices right, the mean right -> all 3 right; p2 (meningioma): 1 of 2
    # right but the wrong slice surer -> both wrong; p3 (pituitary): one right slice
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1],
                      [0.1, 0.5, 0.4], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])  # fmt: skip
    patients = ["p1", "p1", "p1", "p2", "p2", "p3"]
    report = consensus_report(y, probs, patients, CLASSES)
    assert report is not None
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["accuracy_per_patient"] == pytest.approx(2 / 3)
    assert report["n_patients"] == 3
    assert report["per_class"]["meningioma"]["recall"] == 0.0
    # without patients of several slices, or with one patient's slices labelled differently: None
    assert consensus_report(y, probs, [str(i) for i in range(6)], CLASSES) is None
    assert consensus_report(np.array([0, 1, 0, 1, 1, 2]), probs, patients, CLASSES) is None
