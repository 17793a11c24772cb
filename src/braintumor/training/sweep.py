"""ROI expansion-factor sweep: one cross-validation per factor on identical patient-level splits.

Layout of a sweep folder::

    RUN/splits.json            the one set of splits every factor uses
    RUN/phantoms/              the data, when the config uses the embedded phantoms
    RUN/roi-<factor>/          a cross-validation run (cv_metrics.json, fold<k>/...)
    RUN/sweep.csv, sweep.json  factor, validation accuracy, test accuracy and macro-F1 (mean ± std
                               over folds), n_samples; the chosen factor
    RUN/sweep.png              test accuracy against the factor

The factor is chosen on validation patients (each fold's best-checkpoint validation accuracy,
averaged over folds), never on the test folds it reports: picking the best test accuracy would
report an optimistic figure. ``best_on_test`` is kept beside it to show where the two disagree.

ROI crops need a tumour, so they drop samples whose mask is empty; the ``whole`` arm must score
the same samples. It is a crop with :data:`WHOLE_IMAGE_EXPANSION`: :func:`braintumor.data.roi.roi_box`
scales the tumour box about its centre (which lies inside the image) to at least that many pixels
and clips it to the image, so the crop is the whole image for any image side below half a million
pixels; ``crop_roi`` then pads it to a square and resizes it with the same ``resize_square`` as
the whole-slice path. The result is the whole slice, restricted to slices with a non-empty mask.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.config import ExperimentConfig, dump_config
from braintumor.data.roi import WHOLE_IMAGE_EXPANSION
from braintumor.errors import ConfigError, DataError
from braintumor.io_utils import atomic_write, atomic_write_json
from braintumor.models.weights import read_card
from braintumor.run_dir import RunDir
from braintumor.training.cv import cross_validate

WHOLE = "whole"
Factor = float | str  # a float >= 1, or "whole"


def parse_factors(text: str | Sequence[str | float]) -> list[Factor]:
    """``"1.0,1.5,whole"`` (or a list of those items) -> ``[1.0, 1.5, "whole"]``.

    Raises:
        ConfigError: an item is neither a number >= 1 nor ``whole``, or a factor repeats.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    factors: list[Factor] = []
    for item in items:
        raw = str(item).strip().lower()
        if not raw:
            continue
        if raw == WHOLE:
            factors.append(WHOLE)
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value >= 1.0 or math.isinf(value):
            raise ConfigError(
                f"expansion factor {item!r}: expected a number >= 1 (1 = tight tumour box) or "
                f"{WHOLE!r}, e.g. --factors 1.0,1.5,2.0,whole"
            )
        factors.append(value)
    labels = [factor_label(f) for f in factors]
    if not factors or len(set(labels)) != len(labels):
        raise ConfigError(f"factors {labels}: give at least one factor, each once")
    return factors


def factor_label(factor: Factor) -> str:
    """``1.0`` -> ``"1.0"``, ``"whole"`` -> ``"whole"`` (the ``roi-<label>`` folder suffix)."""
    return WHOLE if factor == WHOLE else str(float(factor))


def expansion_of(factor: Factor) -> float:
    """The ``data.roi_expansion`` of a factor; ``whole`` is :data:`WHOLE_IMAGE_EXPANSION`."""
    return WHOLE_IMAGE_EXPANSION if factor == WHOLE else float(factor)


def sweep_arms(run_dir: Path) -> list[Path]:
    """The arms of a finished sweep (``roi-<factor>/`` CV folders), the factor chosen on validation
    first, then the others in the sweep's order: an ensemble whose primary is the chosen factor.

    Raises:
        DataError: ``run_dir`` has no readable ``sweep.json``, or an arm's folder is missing.
    """
    path = RunDir(run_dir).sweep
    try:
        result = json.loads(path.read_text())
        labels = [str(row["factor"]) for row in result["rows"]]
        chosen = str(result.get("best_factor") or labels[0])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(path, f"not a finished sweep-roi result ({exc})") from None
    arms = [Path(run_dir) / f"roi-{label}" for label in [chosen, *(x for x in labels if x != chosen)]]
    missing = [a.name for a in arms if not a.is_dir()]
    if missing:
        raise DataError(run_dir, f"sweep arms {missing} are missing")
    return arms


def _shared_data(cfg: ExperimentConfig, run_dir: Path) -> ExperimentConfig:
    """Phantoms are generated once into ``run_dir/phantoms`` so every factor reads the same files."""
    if cfg.data.path:
        return cfg
    from braintumor.training.data import load_index

    index = load_index(cfg.data, run_dir)  # writes run_dir/phantoms (seeded) unless already there
    folder = Path(index.frame["image"].iloc[0]).resolve().parents[1]  # <folder>/images/<id>.png
    return replace(cfg, data=replace(cfg.data, path=str(folder), format="phantom"))


def _share_splits(run_dir: Path, arm_dir: Path) -> None:
    """Copy ``run_dir/splits.json`` into the arm before it trains (as cross_validate does per fold)."""
    shared, own = RunDir(run_dir).splits, RunDir(arm_dir).splits
    arm_dir.mkdir(parents=True, exist_ok=True)
    if shared.is_file() and not own.is_file():
        own.write_text(shared.read_text())


def validation_scores(arm_dir: Path, folds: Sequence[int]) -> list[float]:
    """Each fold's best-checkpoint validation accuracy (``fold<k>/checkpoints/best.json``)."""
    scores = []
    for k in folds:
        weights = RunDir(arm_dir).fold(k).best_weights
        if not weights.with_suffix(".json").is_file():
            continue
        card = read_card(weights)
        if card.monitor == "val_accuracy" and card.best_score is not None:
            scores.append(card.best_score)
    return scores


def _row(factor: Factor, summary: dict[str, Any], arm_dir: Path) -> dict[str, Any]:
    mean, std = summary.get("mean", {}), summary.get("std", {})
    folds = [int(f["fold"]) for f in summary.get("folds", []) if f.get("fold") is not None]
    val = validation_scores(arm_dir, folds)
    complete = bool(folds) and len(val) == len(folds)  # a fold without validation: no choice
    return {
        "factor": factor_label(factor),
        "roi_expansion": expansion_of(factor),
        "val_accuracy_mean": float(np.mean(val)) if complete else None,
        "val_accuracy_std": float(np.std(val)) if complete else None,
        "accuracy_mean": mean.get("accuracy"),
        "accuracy_std": std.get("accuracy"),
        "macro_f1_mean": mean.get("macro_f1"),
        "macro_f1_std": std.get("macro_f1"),
        "n_samples": int(sum(f.get("n", 0) or 0 for f in summary.get("folds", []))),
        "n_folds": summary.get("n_folds", 0),
    }


def best_factor(rows: Sequence[dict[str, Any]], metric: str = "val_accuracy_mean") -> str | None:
    """Label of the row with the highest ``metric`` (default: mean validation accuracy); ties go
    to the factor listed first. None when no row has it."""
    scored = [r for r in rows if r.get(metric) is not None]
    return str(max(scored, key=lambda r: r[metric])["factor"]) if scored else None


def sweep_roi(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    factors: Sequence[Factor],
    folds: list[int] | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Cross-validate a classifier at each ROI expansion factor on one shared set of splits.

    Args:
        cfg: the experiment; ``train.task`` must be ``classify`` and the data must have masks.
        run_dir: sweep folder; factor ``f`` trains into ``run_dir/roi-<f>``.
        factors: floats >= 1 and/or ``"whole"`` (see :func:`parse_factors`).
        folds: folds to train (default: all ``cfg.data.folds``).
        **train_kwargs: passed to :func:`braintumor.training.runner.train_fold`.

    Returns:
        ``{"rows": [...], "best_factor": label, "splits": path, ...}``, also written to
        ``sweep.json``; ``sweep.csv`` and ``sweep.png`` are written beside it.
    """
    if cfg.train.task != "classify":
        raise ConfigError(f"train.task={cfg.train.task!r}; the ROI sweep trains classifiers (classify)")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = _shared_data(cfg, run_dir)
    dump_config(cfg, RunDir(run_dir).config)
    rows = []
    for factor in factors:
        arm_dir = RunDir(run_dir).roi_arm(factor_label(factor)).path
        _share_splits(run_dir, arm_dir)
        arm_cfg = replace(cfg, data=replace(cfg.data, roi_expansion=expansion_of(factor)))
        summary = cross_validate(arm_cfg, arm_dir, folds=folds, **train_kwargs)
        shared, own = RunDir(run_dir).splits, RunDir(arm_dir).splits
        if not shared.is_file() and own.is_file():
            shared.write_text(own.read_text())
        rows.append(_row(factor, summary, arm_dir))
    result = {
        "rows": rows,
        "best_factor": best_factor(rows),
        "metric": "val_accuracy",
        "tie_break": "the factor listed first",
        "best_on_test": best_factor(rows, "accuracy_mean"),
        "splits": str(RunDir(run_dir).splits),
        "whole_image_expansion": WHOLE_IMAGE_EXPANSION,
    }
    write_sweep(result, run_dir)
    return result


def write_sweep(result: dict[str, Any], run_dir: Path) -> None:
    """``sweep.json``, ``sweep.csv`` and ``sweep.png`` (accuracy ± std against the factor)."""
    from braintumor.reports.plots import plot_metric_vs_parameter, save_figure

    rows = result["rows"]
    atomic_write_json(RunDir(run_dir).sweep, result)
    frame = pd.DataFrame(rows)
    atomic_write(RunDir(run_dir).sweep_table, lambda tmp: frame.to_csv(tmp, index=False))
    plotted = [r for r in rows if r["accuracy_mean"] is not None]
    if not plotted:
        return
    fig = plot_metric_vs_parameter(
        [r["factor"] if r["factor"] == WHOLE else float(r["factor"]) for r in plotted],
        [r["accuracy_mean"] for r in plotted],
        [r["accuracy_std"] or 0.0 for r in plotted],
        xlabel="ROI expansion factor",
        ylabel="accuracy (mean ± std over folds)",
    )
    fig.suptitle(f"ROI sweep · chosen on validation: {result['best_factor']}")
    save_figure(fig, RunDir(run_dir).sweep_figure)
