"""k-fold cross-validation over patients: one run folder per fold plus an aggregated table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.config import ExperimentConfig, dump_config
from braintumor.data.splits import Splits
from braintumor.errors import ConfigError
from braintumor.io_utils import atomic_write, atomic_write_json, atomic_write_text, prepare_out_dir
from braintumor.models.network import check_model
from braintumor.run_dir import RunDir
from braintumor.training.runner import train_fold

SUMMARY_KEYS = {
    "segment": ("dice_per_patient_mean", "dice_per_slice_mean", "iou", "precision", "recall", "hd95"),
    "classify": (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "roc_auc_ovr",
        "ece",
        "accuracy_patient_vote",
        "accuracy_per_patient",
    ),
}


def cross_validate(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    folds: list[int] | None = None,
    then_all: bool = False,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Train and evaluate each fold into ``run_dir/fold<k>``; all folds share ``run_dir/splits.json``.

    Returns ``{"folds": [...per-fold metrics...], "mean": {...}, "std": {...}}`` over every fold
    scored so far (those just trained and any earlier ``fold<k>/metrics.json``: folds resumed with
    ``--only`` or trained as separate processes) and writes it to ``cv_metrics.json`` with a per-fold
    table ``cv_folds.csv``. ``then_all`` then trains the configuration on every patient into
    ``run_dir/all`` (:func:`all_patients_config`), the model to ship: its bundle shows these figures.
    """
    check_model(cfg.model, cfg.train.task)  # before the folder is made
    if cfg.data.split == "all":
        raise ConfigError(
            "data.split=all trains one model on every patient and tests none: there is nothing to "
            "cross-validate; run `braintumor train` with it, and `braintumor cv` with another split"
        )
    run = RunDir(prepare_out_dir(Path(run_dir)))
    dump_config(cfg, run.config)
    chosen = folds if folds is not None else list(range(cfg.data.folds))
    fresh: dict[int, dict[str, Any]] = {}
    for k in chosen:
        fold_cfg = fold_config(cfg, k)
        fold_dir = run.fold(k)
        shared = run.splits
        if shared.is_file():
            Splits.load(shared).check_fold(k)  # before training: a predefined split has one fold
        fold_dir.path.mkdir(parents=True, exist_ok=True)
        if shared.is_file() and not fold_dir.splits.is_file():
            atomic_write_text(fold_dir.splits, shared.read_text())
        metrics = train_fold(fold_cfg, fold_dir.path, **train_kwargs)
        if not shared.is_file() and fold_dir.splits.is_file():
            atomic_write_text(shared, fold_dir.splits.read_text())  # folds may run side by side
        fresh[k] = metrics
    results = scored_folds(run, cfg.data.folds, fresh)
    summary = aggregate(results, cfg.train.task)
    atomic_write_json(run.cv_metrics, summary)
    table = pd.DataFrame(
        [{k: r.get(k) for k in ("fold", *SUMMARY_KEYS[cfg.train.task], "train_seconds")} for r in results]
    )
    atomic_write(run.cv_folds, lambda tmp: table.to_csv(tmp, index=False))
    if then_all:
        train_fold(all_patients_config(cfg), run.all.path, **train_kwargs)
    return summary


def scored_folds(run: RunDir, n_folds: int, fresh: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Metrics of each fold scored so far, in fold order: ``fresh`` (just trained) first, else the
    fold's ``metrics.json``."""
    results = []
    for k in range(n_folds):
        path = run.fold(k).metrics
        if k in fresh:
            results.append(fresh[k])
        elif path.is_file():
            results.append(json.loads(path.read_text()))
    return results


def fold_config(cfg: ExperimentConfig, k: int) -> ExperimentConfig:
    """The config of fold ``k``: ``data.fold = k``, and ``{fold}`` in ``model.init_from`` replaced."""
    model = replace(cfg.model, init_from=cfg.model.init_from.replace("{fold}", str(k)))
    return replace(cfg, data=replace(cfg.data, fold=k), model=model)


def all_patients_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The configuration trained on every patient: no test or validation part, so its weights are
    the last epoch's; ``fold{fold}`` in ``model.init_from`` becomes ``all`` (``<pretraining cv>/all/``)."""
    init_from = cfg.model.init_from.replace(f"{RunDir.FOLD}{{fold}}", RunDir.ALL)
    model = replace(cfg.model, init_from=init_from.replace("{fold}", RunDir.ALL))
    data = replace(cfg.data, split="all", val_fraction=0.0, fold=0)
    return replace(cfg, data=data, model=model)


def aggregate(results: list[dict[str, Any]], task: str) -> dict[str, Any]:
    """Mean and standard deviation of each headline metric over folds (NaN-aware)."""
    mean, std = {}, {}
    for key in (*SUMMARY_KEYS[task], "train_seconds"):
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=float)
        mean[key] = float(np.nanmean(values)) if values.size and not np.isnan(values).all() else None
        std[key] = float(np.nanstd(values)) if values.size and not np.isnan(values).all() else None
    per_patient = [p for r in results for p in r.get("per_patient", [])]
    folds = [{k: v for k, v in r.items() if k != "per_patient"} for r in results]
    out: dict[str, Any] = {"task": task, "n_folds": len(results), "mean": mean, "std": std, "folds": folds}
    if per_patient:
        dice = np.array([p["dice"] for p in per_patient], dtype=float)
        out["pooled_per_patient_dice"] = {
            "n": int(dice.size),
            "mean": float(dice.mean()),
            "std": float(dice.std()),
            "median": float(np.median(dice)),
        }
    return out
