"""Figures a run writes after evaluation: curves, overlays, distributions, confusion matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.reports import plots
from braintumor.run_dir import RunDir
from braintumor.training.data import FoldData

MAX_MISCLASSIFIED = 16


def _curves(run_dir: Path) -> None:
    history = RunDir(run_dir).history
    if history.is_file():
        plots.save_figure(plots.plot_training_curves(pd.read_csv(history)), RunDir(run_dir).curves)


def segmentation_figures(
    fold: FoldData,
    per_slice: pd.DataFrame,
    per_patient: pd.DataFrame,
    preds: dict[str, np.ndarray],
    run_dir: Path,
) -> None:
    """``curves.png``, ``overlays.png`` (best / median / worst tumour slices) and ``dice_per_patient.png``."""
    _curves(run_dir)
    tumour = per_slice[per_slice["true_area"] > 0]
    if not tumour.empty:
        picks = plots.select_cases(tumour, "dice", n=2)
        store = fold.store
        pos = {s: i for i, s in enumerate(store.sample_ids)}
        images, truths, masks, titles = [], [], [], []
        for group in ("best", "median", "worst"):
            for row in picks[group]:
                sid = tumour.at[row, "sample_id"]
                images.append(np.asarray(store.images[pos[sid]], dtype=np.float32))
                truths.append(np.asarray(store.masks[pos[sid], 0]) if store.masks is not None else None)
                masks.append(preds[sid])
                titles.append(f"{group} · {sid} · dice {tumour.at[row, 'dice']:.2f}")
        plots.save_figure(
            plots.plot_overlays(images, truths, masks, titles, ncols=2), RunDir(run_dir).overlays
        )
    if not per_patient.empty:
        fig = plots.plot_dice_distribution(per_patient["dice"].to_numpy())
        plots.save_figure(fig, RunDir(run_dir).dice_per_patient)


def classification_figures(
    report: dict[str, Any],
    predictions: pd.DataFrame,
    classes: list[str],
    run_dir: Path,
    fold: FoldData | None = None,
) -> None:
    """``curves.png``, ``confusion.png``, ``roc.png`` and, given the fold's arrays,
    ``misclassified.png``."""
    _curves(run_dir)
    plots.save_figure(plots.plot_confusion_matrix(report["confusion"], classes), RunDir(run_dir).confusion)
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy()
    fig = plots.plot_roc_curves(predictions["target"].to_numpy(), probs, classes)
    plots.save_figure(fig, RunDir(run_dir).roc)
    if fold is not None:
        misclassified_figure(predictions, classes, fold, RunDir(run_dir).misclassified)


def pick_misclassified(predictions: pd.DataFrame, n: int = MAX_MISCLASSIFIED) -> pd.DataFrame:
    """The ``n`` most confident wrong predictions (rows of ``predictions``), most confident first."""
    wrong = predictions[predictions["target"] != predictions["pred"]]
    return wrong.sort_values(["confidence", "sample_id"], ascending=[False, True], kind="stable").head(n)


def misclassified_figure(
    predictions: pd.DataFrame, classes: list[str], fold: FoldData, path: Path, n: int = MAX_MISCLASSIFIED
) -> Path | None:
    """Grid of up to ``n`` misclassified test images (as the model saw them), titled
    "true → pred (p=0.87)" with the sample id below; the most confident mistakes come first.

    Writes nothing (and removes a stale ``path``) when every prediction is right.
    """
    picks = pick_misclassified(predictions, n)
    if picks.empty:
        path.unlink(missing_ok=True)
        return None
    store = fold.store
    pos = {s: i for i, s in enumerate(store.sample_ids)}
    images, titles = [], []
    for row in picks.itertuples(index=False):
        images.append(np.asarray(store.images[pos[str(row.sample_id)]], dtype=np.float32))
        sid = str(row.sample_id)
        short = sid if len(sid) <= 28 else "…" + sid[-27:]
        true, pred = classes[int(row.target)], classes[int(row.pred)]
        titles.append(f"{true} → {pred} (p={row.confidence:.2f})\n{short}")
    none: list[np.ndarray | None] = [None] * len(images)
    fig = plots.plot_overlays(images, none, none, titles, ncols=4)
    n_wrong = int((predictions["target"] != predictions["pred"]).sum())
    fig.suptitle(f"Most confident misclassified test images ({len(picks)} of {n_wrong})")
    return plots.save_figure(fig, path)
