"""Late fusion of a tumour-region CNN with a random forest on where the tumour is and how large.

For each fold of a finished ROI-classification run (CV folder or single fold), a random forest is
fitted on the :mod:`~braintumor.data.region_features` of that fold's **training and validation
patients** (the patients the CNN learnt from; never its test patients), and its class probabilities
on the test slices are averaged with the CNN's (``predictions.csv`` of the fold) with a fixed weight
chosen beforehand, not fitted. The masks are the dataset's ground-truth masks, as for the CNN's own
tumour-region scores. Several CNN runs on the same folds (e.g. the arms of an expansion-factor sweep:
crops at several scales) are averaged with equal weights first and count as one CNN.

Layout of the output folder (a cross-validation folder, so ``braintumor report`` reads it)::

    OUT/fold<k>/metrics.json      accuracy / macro-F1 of the CNN, the forest and the fusion
    OUT/fold<k>/predictions.csv   per test slice: target, the three predictions and probabilities
    OUT/fold<k>/confusion.png     confusion matrix of the fusion
    OUT/cv_metrics.json, OUT/cv_folds.csv   mean and std over folds
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.errors import DataError
from braintumor.evaluation import ClassificationAccumulator, consensus_report
from braintumor.experiments.segment import fold_parts, fold_runs
from braintumor.io_utils import atomic_write, atomic_write_json
from braintumor.run_dir import RunDir
from braintumor.runtime.fusion import fuse
from braintumor.training.region_forest import fit_region_forest, fold_regions, forest_probabilities

FUSION_KEYS = (
    "accuracy", "macro_f1", "balanced_accuracy", "accuracy_cnn", "macro_f1_cnn",
    "accuracy_forest", "macro_f1_forest", "accuracy_patient_vote", "accuracy_patient_vote_cnn",
    "accuracy_per_patient",
)  # fmt: skip


def _cnn_probabilities(run_dir: Path, classes: list[str], sample_ids: list[str]) -> np.ndarray:
    path = RunDir(run_dir).predictions
    if not path.is_file():
        raise DataError(path, "not found; evaluate the classification run first (braintumor evaluate RUN)")
    frame = pd.read_csv(path, dtype={"sample_id": str}).set_index("sample_id")
    columns = [f"prob_{c}" for c in classes]
    missing_cols = [c for c in columns if c not in frame.columns]
    missing = sorted(set(sample_ids) - set(frame.index))
    if missing_cols or missing:
        lacks = missing_cols or f"{len(missing)} test slices, e.g. {missing[:3]}"
        raise DataError(path, f"lacks {lacks}; re-evaluate the run (braintumor evaluate RUN)")
    return frame.loc[sample_ids, columns].to_numpy(dtype=float)


def _same_patients(runs: Sequence[Path]) -> None:
    """Refuse CNN runs of one fold that did not learn from (and test on) the same patients."""
    first = fold_parts(runs[0])[1]
    for run in runs[1:]:
        parts = fold_parts(run)[1]
        if parts != first:
            differ = [p for p in ("train", "val", "test") if parts[p] != first[p]]
            raise DataError(
                run, f"its {'/'.join(differ)} patients differ from {runs[0]}'s; fuse runs of one split"
            )


def fuse_fold(
    run_dirs: Path | Sequence[Path], out_dir: Path, weight: float = 0.5, trees: int = 1000, seed: int = 0,
    cache: dict[str, dict[str, float] | None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fit the forest on one fold's training patients and score CNN, forest and fusion on its test
    patients; ``weight`` is the CNN's share of the averaged probabilities. Several CNN runs of the
    fold are averaged first (equal weights)."""
    runs = [run_dirs] if isinstance(run_dirs, Path) else list(run_dirs)
    _same_patients(runs)
    data = fold_regions(runs[0], cache)
    classes = data.classes
    forest = fit_region_forest(data.x_train, data.y_train, trees, seed)
    sids = [str(s) for s in data.x_test.index]
    p_forest = forest_probabilities(forest, data.x_test, len(classes))
    p_cnn = np.mean([_cnn_probabilities(run, classes, sids) for run in runs], axis=0)
    p_fused = fuse(p_cnn, p_forest, weight)
    target = np.asarray(data.y_test)
    reports, votes = {}, {}
    for name, probs in (("fused", p_fused), ("cnn", p_cnn), ("forest", p_forest)):
        acc = ClassificationAccumulator(classes, inputs="probs")
        acc.add(probs, target, sids)
        reports[name] = acc.report()
        votes[name] = consensus_report(target, probs, data.test_patients, classes)
    facts = {"fold": data.fold, "cls_run": ", ".join(map(str, runs)), "weight_cnn": weight, "trees": trees}
    table = pd.DataFrame({"sample_id": sids, "patient_id": data.test_patients,
                          "target": [classes[t] for t in target],
                          **{f"pred_{n}": [classes[i] for i in p.argmax(1)]
                             for n, p in (("fused", p_fused), ("cnn", p_cnn), ("forest", p_forest))},
                          **{f"prob_{c}": p_fused[:, j] for j, c in enumerate(classes)}})  # fmt: skip
    return _write_fold(out_dir, reports, votes, classes, table, facts)


def _write_fold(
    out_dir: Path, reports: dict[str, dict[str, Any]], votes: dict[str, dict[str, Any] | None],
    classes: list[str], table: pd.DataFrame, facts: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    from braintumor.reports.plots import plot_confusion_matrix, save_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    fused = reports["fused"]
    metrics: dict[str, Any] = {
        "task": "fusion", **facts, "n": len(table),
        "accuracy": fused["accuracy"], "macro_f1": fused["macro_f1"],
        "balanced_accuracy": fused["balanced_accuracy"],
        "accuracy_cnn": reports["cnn"]["accuracy"], "macro_f1_cnn": reports["cnn"]["macro_f1"],
        "accuracy_forest": reports["forest"]["accuracy"], "macro_f1_forest": reports["forest"]["macro_f1"],
        "per_class": fused["per_class"], "confusion": fused["confusion"],
    }  # fmt: skip
    if votes["fused"] is not None and votes["cnn"] is not None:
        metrics.update({
            "accuracy_patient_vote": votes["fused"]["accuracy"],
            "accuracy_patient_vote_cnn": votes["cnn"]["accuracy"],
            "accuracy_per_patient": votes["fused"]["accuracy_per_patient"],
            "patient_vote": votes["fused"],
        })  # fmt: skip
    atomic_write(RunDir(out_dir).predictions, lambda tmp: table.to_csv(tmp, index=False))
    save_figure(plot_confusion_matrix(fused["confusion"], classes), RunDir(out_dir).confusion)
    atomic_write_json(RunDir(out_dir).metrics, metrics)
    return metrics


def fuse_run(
    cls: str | Path | Sequence[str | Path], out: str | Path, weight: float = 0.5, trees: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """:func:`fuse_fold` on every finished fold of ``cls``; writes and returns the aggregate.

    Args:
        cls: tumour-region classification run (``fold<k>/`` CV folder or one fold), or several on
            the same splits (averaged as one CNN); each must have finished the same folds.
        out: output folder (see the module docstring).
        weight: the CNN's share of the averaged probabilities, in [0, 1] (0.5: plain average).
        trees: trees in the forest.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight={weight}; expected the CNN's share in [0, 1]")
    out, cache = Path(out), dict[str, dict[str, float] | None]()
    folders = [cls] if isinstance(cls, str | Path) else list(cls)
    every = [fold_runs(folder) for folder in folders]
    for folder, runs in zip(folders[1:], every[1:], strict=True):
        if set(runs) != set(every[0]):
            raise DataError(folder, f"has finished folds {sorted(runs)}, {folders[0]} {sorted(every[0])}")
    results = [
        fuse_fold([runs[k] for runs in every], RunDir(out).fold(k).path, weight, trees, seed, cache)
        for k in every[0]
    ]
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for key in FUSION_KEYS:  # the patient-vote keys are absent without patients of several slices
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=float)
        mean[key], std[key] = (float(values.mean()), float(values.std())) if values.size else (None, None)
    folds = [{k: v for k, v in r.items() if k not in ("per_class", "confusion", "patient_vote")}
             for r in results]  # fmt: skip
    summary = {"task": "fusion", "n_folds": len(results), "mean": mean, "std": std, "folds": folds}
    atomic_write_json(RunDir(out).cv_metrics, summary)
    table = pd.DataFrame([{k: r.get(k) for k in ("fold", *FUSION_KEYS, "n")} for r in results])
    atomic_write(RunDir(out).cv_folds, lambda tmp: table.to_csv(tmp, index=False))
    return summary
