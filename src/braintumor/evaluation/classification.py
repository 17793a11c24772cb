"""Classification metrics (scikit-learn) plus expected calibration error, and an accumulator.

All outputs are JSON-serialisable: plain ``float``, ``int``, ``list`` and ``dict``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn import metrics

from braintumor.errors import DataError
from braintumor.runtime.fusion import consensus

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]
ECE_BINS = 15


def _to_numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def expected_calibration_error(y_true: ArrayLike, probs: ArrayLike, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-1 prediction.

    Confidence is the maximum class probability; samples fall into ``n_bins`` equal-width bins
    ``(k/n_bins, (k+1)/n_bins]`` of confidence and ``ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``.

    Args:
        y_true: N integer labels.
        probs: N×K class probabilities.
        n_bins: number of bins (15 is the usual choice).
    """
    y = _to_numpy(y_true).astype(int)
    p = _to_numpy(probs).astype(np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def _validate(y: np.ndarray, p: np.ndarray, class_names: Sequence[str]) -> None:
    k = len(class_names)
    if p.ndim != 2 or p.shape[1] != k or k < 2:
        raise ValueError(f"probs must be N×K with K = len(class_names) = {k} >= 2, got shape {p.shape}")
    if y.ndim != 1 or y.shape[0] != p.shape[0] or y.shape[0] == 0:
        raise ValueError(f"y_true must hold one label per row of probs ({p.shape[0]}), got shape {y.shape}")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"y_true labels must lie in [0, {k - 1}], got [{y.min()}, {y.max()}]")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("rows of probs must sum to 1; apply softmax to logits first")


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Macro one-vs-rest ROC-AUC; None when a class is absent from ``y``."""
    k = p.shape[1]
    if np.unique(y).size < k:
        return None
    if k == 2:
        return float(metrics.roc_auc_score(y, p[:, 1]))
    return float(metrics.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(k))))


def classification_report(y_true: ArrayLike, probs: ArrayLike, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, F1, confusion matrix, ROC-AUC and ECE of top-1 predictions.

    Args:
        y_true: N integer labels in ``[0, K)``.
        probs: N×K float class probabilities (rows sum to 1).
        class_names: K names, in label order.

    Returns:
        ``accuracy``, ``balanced_accuracy`` (mean recall over classes present in ``y_true``),
        ``macro_f1`` (over classes present in ``y_true`` or predicted, scikit-learn's default),
        ``per_class`` ``{name: {precision, recall, f1, support}}`` (0 where undefined),
        ``confusion`` (K×K nested list, rows = true class, columns = predicted),
        ``roc_auc_ovr`` (macro one-vs-rest; None if a class is absent from ``y_true``),
        ``ece`` (15 bins) and ``n``.
    """
    y = _to_numpy(y_true).astype(int)
    p = _to_numpy(probs).astype(np.float64)
    _validate(y, p, class_names)
    pred = p.argmax(axis=1)
    labels = list(range(len(class_names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        balanced = metrics.balanced_accuracy_score(y, pred)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(metrics.f1_score(y, pred, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion": metrics.confusion_matrix(y, pred, labels=labels).astype(int).tolist(),
        "roc_auc_ovr": _roc_auc(y, p),
        "ece": expected_calibration_error(y, p),
        "n": int(y.shape[0]),
    }


def _patient_codes(patients: Sequence[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's patient as a code 0..P-1, and each patient's number of samples."""
    if len(patients) != n:
        raise ValueError(f"got {len(patients)} patient ids for {n} samples; pass one per sample")
    codes = pd.factorize(pd.Series([str(p) for p in patients]))[0]
    return codes, np.bincount(codes)


def patient_consensus(probs: ArrayLike, patients: Sequence[Any]) -> np.ndarray:
    """Each row of ``probs`` replaced by its patient's :func:`~braintumor.runtime.fusion.consensus`
    (the mean of the patient's rows): soft voting over the slices of one patient, who has one
    tumour (every figshare patient's slices share one label)."""
    p = _to_numpy(probs).astype(np.float64)
    codes, counts = _patient_codes(patients, p.shape[0])
    votes = np.stack([consensus(p[codes == c]) for c in range(counts.size)]) if counts.size else p
    return votes[codes]


def consensus_report(
    y_true: ArrayLike, probs: ArrayLike, patients: Sequence[Any], class_names: Sequence[str]
) -> dict[str, Any] | None:
    """Scores when every slice takes its patient's consensus (:func:`patient_consensus`): what
    analysing all of a patient's slices together gives, not a single slice.

    Returns:
        None when no patient has two samples or one patient's samples carry different labels; else
        ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``per_class`` over the slices (as
        :func:`classification_report`), ``accuracy_per_patient`` (one call per patient) and
        ``n_patients``.
    """
    y = _to_numpy(y_true).astype(int)
    codes, counts = _patient_codes(patients, y.shape[0])
    first = np.unique(codes, return_index=True)[1]
    if counts.max(initial=0) < 2 or np.any(y != y[first][codes]):
        return None
    voted = patient_consensus(probs, patients)
    report = classification_report(y, voted, class_names)
    return {
        **{k: report[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "per_class")},
        "accuracy_per_patient": float(np.mean(voted[first].argmax(axis=1) == y[first])),
        "n_patients": int(counts.size),
    }


def calls_report(targets: Sequence[str], calls: Sequence[str], class_names: Sequence[str]) -> dict[str, Any]:
    """Scores of class calls where the last name is an abstention ("no tumour") that is never true:
    the segment-then-classify pipeline scored on tumour slices, a slice it calls tumour-free wrong.

    Args:
        targets: N true class names, among the first K of ``class_names``.
        calls: N called names, any of ``class_names``.
        class_names: K class names, then the abstention (index K).

    Returns:
        ``accuracy`` (an abstention is wrong), ``balanced_accuracy`` (mean recall over the classes
        in ``targets``), ``macro_f1`` (over the K classes present in ``targets`` or ``calls``;
        without abstentions these are scikit-learn's defaults, as :func:`classification_report`),
        ``per_class`` ``{name: {precision, recall, f1, support}}`` of the K classes and
        ``confusion`` ((K+1)×(K+1) nested list, rows = true class, the last column the
        abstentions; the last row is empty).
    """
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(targets) - set(class_names[:-1])) + sorted(set(calls) - set(class_names))
    if unknown or not len(targets) == len(calls) > 0:
        raise ValueError(f"expected N >= 1 targets among {list(class_names[:-1])} and N calls; got {unknown}")
    y = np.array([index[t] for t in targets], dtype=int)
    pred = np.array([index[c] for c in calls], dtype=int)
    k, labels = len(class_names) - 1, list(range(len(class_names)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    scored = sorted((set(y.tolist()) | set(pred.tolist())) - {k})
    per_class = {
        class_names[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                         "support": int(support[i])}
        for i in range(k)
    }  # fmt: skip
    return {
        "accuracy": float(np.mean(y == pred)),
        "balanced_accuracy": float(np.mean(recall[sorted(set(y.tolist()))])),
        "macro_f1": float(np.mean(f1[scored])),
        "per_class": per_class,
        "confusion": metrics.confusion_matrix(y, pred, labels=labels).astype(int).tolist(),
    }


class ClassificationAccumulator:
    """Collects model outputs batch by batch and reports on all of them.

    Args:
        class_names: K class names in label order.
        inputs: what :meth:`add` receives: ``"logits"`` (softmax is applied), ``"probs"``, or
            ``"auto"`` (rows that are non-negative and sum to 1 are taken as probabilities,
            anything else as logits).
    """

    def __init__(
        self,
        class_names: Sequence[str],
        inputs: Literal["auto", "logits", "probs"] = "auto",
    ) -> None:
        if inputs not in ("auto", "logits", "probs"):
            raise ValueError(f"inputs must be 'auto', 'logits' or 'probs', got {inputs!r}")
        self.class_names = list(class_names)
        self.inputs = inputs
        self._probs: list[np.ndarray] = []
        self._targets: list[np.ndarray] = []
        self._sample_ids: list[str] = []

    def add(self, outputs: ArrayLike, targets: ArrayLike, sample_ids: Sequence[str]) -> None:
        """Add a batch: ``outputs`` B×K logits or probabilities, ``targets`` B labels."""
        out = _to_numpy(outputs).astype(np.float64)
        tgt = _to_numpy(targets).astype(int).reshape(-1)
        if out.ndim != 2 or out.shape[1] != len(self.class_names):
            raise ValueError(
                f"outputs must be B×{len(self.class_names)} (one column per class), got shape {out.shape}"
            )
        if not (out.shape[0] == tgt.shape[0] == len(sample_ids)):
            raise ValueError(
                f"got {out.shape[0]} outputs, {tgt.shape[0]} targets and {len(sample_ids)} "
                "sample_ids; pass one of each per sample"
            )
        self._probs.append(self._as_probs(out))
        self._targets.append(tgt)
        self._sample_ids.extend(str(s) for s in sample_ids)

    def _as_probs(self, out: np.ndarray) -> np.ndarray:
        is_probs = bool(np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))
        if self.inputs == "probs" or (self.inputs == "auto" and is_probs):
            return out
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._probs:
            raise ValueError("no samples added; call add() before report() or per_sample()")
        return np.concatenate(self._targets), np.concatenate(self._probs)

    def report(self) -> dict[str, Any]:
        """:func:`classification_report` over everything added."""
        y, p = self._stacked()
        return classification_report(y, p, self.class_names)

    def per_sample(self) -> pd.DataFrame:
        """One row per sample: sample_id, target, pred, confidence, correct, prob_<class>..."""
        y, p = self._stacked()
        frame = pd.DataFrame(
            {
                "sample_id": self._sample_ids,
                "target": y,
                "pred": p.argmax(axis=1),
                "confidence": p.max(axis=1),
            }
        )
        frame["correct"] = frame["target"] == frame["pred"]
        for i, name in enumerate(self.class_names):
            frame[f"prob_{name}"] = p[:, i]
        return frame

    def reset(self) -> None:
        """Forget everything added so far."""
        self._probs.clear()
        self._targets.clear()
        self._sample_ids.clear()


def label_map(data_classes: Sequence[str], model_classes: list[str], source: str | Path) -> torch.Tensor:
    """Each data class name (a dataset's class list, or one label per sample) -> the model's index of
    that class: other data may order its classes differently, or hold fewer of them."""
    unknown = sorted(set(data_classes) - set(model_classes))
    if unknown:
        raise DataError(
            source, f"the data's classes {unknown} are not classes of the model {model_classes}; "
            "a classifier can only be scored on classes it was trained on",
        )  # fmt: skip
    return torch.tensor([model_classes.index(c) for c in data_classes], dtype=torch.long)
