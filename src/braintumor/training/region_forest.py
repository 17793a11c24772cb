"""Region features of a classification fold and the random forest fitted on them.

:func:`fold_regions` reads the :mod:`~braintumor.data.region_features` of a tumour-region
classification run's fold, split as its ``splits.json`` (training = train + val patients, the ones
the CNN learnt from); :func:`fit_region_forest` fits the scikit-learn forest that
:mod:`braintumor.experiments.fusion` averages with the CNN and that bundles carry
(:mod:`braintumor.bundle.forest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.errors import DataError
from braintumor.models.weights import read_card
from braintumor.run_dir import RunDir


def region_table(index_frame: pd.DataFrame, cache: dict[str, dict[str, float] | None]) -> pd.DataFrame:
    """Region features of the rows with a tumour (computed once per sample across folds), indexed
    by sample id; slices with an empty mask are left out, as the tumour-region training cache does."""
    from braintumor.data.readers import read_image, read_mask
    from braintumor.data.region_features import FEATURES, region_features

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


@dataclass
class FoldRegions:
    """Region features and labels of one fold's training (train + val) and test tumour slices."""

    fold: int
    classes: list[str]
    x_train: pd.DataFrame
    y_train: list[int]
    x_test: pd.DataFrame
    y_test: list[int]
    test_patients: list[str]


def fold_regions(
    run_dir: Path, cache: dict[str, dict[str, float] | None] | None = None, with_test: bool = True
) -> FoldRegions:
    """Region features of a tumour-region classification run's fold, split as its ``splits.json``;
    without ``with_test`` only the training side is read (``x_test`` is empty).

    Raises:
        DataError: not a tumour-region classification run, or no tumour slice on one side.
    """
    from braintumor.config import load_config
    from braintumor.data.splits import Splits
    from braintumor.training.data import load_index

    cfg = load_config(RunDir(run_dir).config)
    card = read_card(RunDir(run_dir).best_weights)
    if card.task != "classify" or cfg.data.roi_expansion is None:
        raise DataError(run_dir, "is not a tumour-region classification run (data.roi_expansion)")
    classes = list(card.classes)
    index = load_index(cfg.data, run_dir)
    frame = index.frame[index.frame["mask"].astype(str) != ""]
    splits = Splits.load(RunDir(run_dir).splits)
    fold = splits.folds[splits.check_fold(cfg.data.fold)]
    column = "patient_id" if splits.unit == "patient" else "sample_id"
    ids = frame[column].astype(str)
    train = frame[ids.isin({*map(str, fold["train"]), *map(str, fold.get("val", []))})]
    test = frame[ids.isin(set(map(str, fold["test"])) if with_test else set())]
    cache = {} if cache is None else cache
    x_train, x_test = region_table(train, cache), region_table(test, cache)
    if x_train.empty or (with_test and x_test.empty):
        raise DataError(run_dir, "no training or no test slice with a tumour mask; nothing to fuse")
    label_of = dict(zip(frame["sample_id"].astype(str), frame["label"].astype(str), strict=True))
    patient_of = dict(zip(frame["sample_id"].astype(str), frame["patient_id"].astype(str), strict=True))
    return FoldRegions(
        cfg.data.fold, classes, x_train, [classes.index(label_of[s]) for s in x_train.index],
        x_test, [classes.index(label_of[s]) for s in x_test.index], [patient_of[s] for s in x_test.index],
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
