"""Late fusion of a tumour-region CNN with a random forest on where the tumour is and how large.

For each fold of a finished ROI-classification run (CV folder or single fold), a random forest is
fitted on the :mod:`~braintumor.analysis.region_features` of that fold's **training and validation
patients** (the patients the CNN learnt from; never its test patients), and its class probabilities
on the test slices are averaged with the CNN's (``predictions.csv`` of the fold) with a fixed weight
chosen beforehand, not fitted. The masks are the dataset's ground-truth masks, as for the CNN's own
tumour-region scores.

Layout of the output folder (a cross-validation folder, so ``braintumor report`` reads it)::

    OUT/fold<k>/metrics.json      accuracy / macro-F1 of the CNN, the forest and the fusion
    OUT/fold<k>/predictions.csv   per test slice: target, the three predictions and probabilities
    OUT/fold<k>/confusion.png     confusion matrix of the fusion
    OUT/cv_metrics.json, OUT/cv_folds.csv   mean and std over folds
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.errors import DataError
from braintumor.evaluation import ClassificationAccumulator
from braintumor.experiments.segment import fold_runs
from braintumor.io_utils import atomic_write, atomic_write_json

FUSION_KEYS = (
    "accuracy", "macro_f1", "balanced_accuracy", "accuracy_cnn", "macro_f1_cnn",
    "accuracy_forest", "macro_f1_forest",
)  # fmt: skip


def _features(index_frame: pd.DataFrame, cache: dict[str, dict[str, float] | None]) -> pd.DataFrame:
    """Region features of the rows with a tumour (computed once per sample across folds), indexed
    by sample id; slices with an empty mask are left out, as the tumour-region training cache does."""
    from braintumor.analysis.region_features import FEATURES, region_features
    from braintumor.data.readers import read_image, read_mask

    rows = {}
    for row in index_frame.itertuples(index=False):
        sid = str(row.sample_id)
        if sid not in cache:
            image = read_image(row.image)
            mask = read_mask(row.mask, image.shape[:2])
            try:
                cache[sid] = region_features(image, mask) if mask.any() else None
            except ValueError as exc:
                raise DataError(row.image, str(exc)) from exc
        if cache[sid] is not None:
            rows[sid] = cache[sid]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(FEATURES))


def _cnn_probabilities(run_dir: Path, classes: list[str], sample_ids: list[str]) -> np.ndarray:
    path = run_dir / "predictions.csv"
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


@dataclass
class FoldRegions:
    """Region features and labels of one fold's training (train + val) and test tumour slices."""

    classes: list[str]
    x_train: pd.DataFrame
    y_train: list[int]
    x_test: pd.DataFrame
    y_test: list[int]


def fold_regions(run_dir: Path, cache: dict[str, dict[str, float] | None] | None = None) -> FoldRegions:
    """Region features of a tumour-region classification run's fold, split as its ``splits.json``.

    Raises:
        DataError: not a tumour-region classification run, or no tumour slice on one side.
    """
    from braintumor.config import load_config
    from braintumor.data.splits import Splits
    from braintumor.training.data import load_index

    cfg = load_config(run_dir / "config.yaml")
    meta = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    if meta.get("task") != "classify" or cfg.data.roi_expansion is None:
        raise DataError(run_dir, "is not a tumour-region classification run (data.roi_expansion)")
    classes = list(meta["classes"])
    index = load_index(cfg.data, run_dir)
    frame = index.frame[index.frame["mask"].astype(str) != ""]
    splits = Splits.load(run_dir / "splits.json")
    fold = splits.folds[min(cfg.data.fold, len(splits.folds) - 1)]
    column = "patient_id" if splits.unit == "patient" else "sample_id"
    ids = frame[column].astype(str)
    train = frame[ids.isin({*map(str, fold["train"]), *map(str, fold.get("val", []))})]
    test = frame[ids.isin(set(map(str, fold["test"])))]
    cache = {} if cache is None else cache
    x_train, x_test = _features(train, cache), _features(test, cache)
    if x_train.empty or x_test.empty:
        raise DataError(run_dir, "no training or no test slice with a tumour mask; nothing to fuse")
    label_of = dict(zip(frame["sample_id"].astype(str), frame["label"].astype(str), strict=True))
    return FoldRegions(
        classes, x_train, [classes.index(label_of[s]) for s in x_train.index],
        x_test, [classes.index(label_of[s]) for s in x_test.index],
    )  # fmt: skip


def fit_region_forest(x: pd.DataFrame, y: list[int], trees: int = 1000, seed: int = 0) -> Any:
    """A random forest (scikit-learn; leaves of at least 2 slices) on region features."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
    return forest.fit(x.to_numpy(), y)


def forest_probabilities(forest: Any, x: pd.DataFrame | np.ndarray, n_classes: int) -> np.ndarray:
    """N×``n_classes`` probabilities (zero for a class the forest never saw in training)."""
    out = np.zeros((len(x), n_classes))
    out[:, forest.classes_] = forest.predict_proba(np.asarray(x, dtype=float))
    return out


def fuse_fold(
    run_dir: Path, out_dir: Path, weight: float = 0.5, trees: int = 1000, seed: int = 0,
    cache: dict[str, dict[str, float] | None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fit the forest on one fold's training patients and score CNN, forest and fusion on its test
    patients; ``weight`` is the CNN's share of the averaged probabilities."""
    from braintumor.config import load_config

    data = fold_regions(run_dir, cache)
    classes = data.classes
    forest = fit_region_forest(data.x_train, data.y_train, trees, seed)
    sids = [str(s) for s in data.x_test.index]
    p_forest = forest_probabilities(forest, data.x_test, len(classes))
    p_cnn = _cnn_probabilities(run_dir, classes, sids)
    p_fused = weight * p_cnn + (1 - weight) * p_forest
    target = np.asarray(data.y_test)
    cfg = load_config(run_dir / "config.yaml")
    reports = {}
    for name, probs in (("fused", p_fused), ("cnn", p_cnn), ("forest", p_forest)):
        acc = ClassificationAccumulator(classes, inputs="probs")
        acc.add(probs, target, sids)
        reports[name] = acc.report()
    facts = {"fold": cfg.data.fold, "cls_run": str(run_dir), "weight_cnn": weight, "trees": trees}
    table = pd.DataFrame({"sample_id": sids, "target": [classes[t] for t in target],
                          **{f"pred_{n}": [classes[i] for i in p.argmax(1)]
                             for n, p in (("fused", p_fused), ("cnn", p_cnn), ("forest", p_forest))},
                          **{f"prob_{c}": p_fused[:, j] for j, c in enumerate(classes)}})  # fmt: skip
    return _write_fold(out_dir, reports, classes, table, facts)


def _write_fold(
    out_dir: Path, reports: dict[str, dict[str, Any]], classes: list[str], table: pd.DataFrame,
    facts: dict[str, Any],
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
    atomic_write(out_dir / "predictions.csv", lambda tmp: table.to_csv(tmp, index=False))
    save_figure(plot_confusion_matrix(fused["confusion"], classes), out_dir / "confusion.png")
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def fuse_run(
    cls: str | Path, out: str | Path, weight: float = 0.5, trees: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """:func:`fuse_fold` on every finished fold of ``cls``; writes and returns the aggregate.

    Args:
        cls: tumour-region classification run (``fold<k>/`` CV folder or one fold).
        out: output folder (see the module docstring).
        weight: the CNN's share of the averaged probabilities, in [0, 1] (0.5: plain average).
        trees: trees in the forest.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight={weight}; expected the CNN's share in [0, 1]")
    out, cache = Path(out), dict[str, dict[str, float] | None]()
    runs = fold_runs(cls)
    results = [fuse_fold(run, out / f"fold{k}", weight, trees, seed, cache) for k, run in runs.items()]
    mean, std = {}, {}
    for key in FUSION_KEYS:
        values = np.array([r[key] for r in results], dtype=float)
        mean[key], std[key] = float(values.mean()), float(values.std())
    folds = [{k: v for k, v in r.items() if k not in ("per_class", "confusion")} for r in results]
    summary = {"task": "fusion", "n_folds": len(results), "mean": mean, "std": std, "folds": folds}
    atomic_write_json(out / "cv_metrics.json", summary)
    table = pd.DataFrame([{k: r.get(k) for k in ("fold", *FUSION_KEYS, "n")} for r in results])
    atomic_write(out / "cv_folds.csv", lambda tmp: table.to_csv(tmp, index=False))
    return summary
