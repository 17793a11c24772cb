"""Result plots: every function returns a matplotlib ``Figure``; :func:`save_figure` writes a PNG.

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so they never enter
pyplot's figure registry: nothing to close, nothing leaks in long runs, nothing is ever shown.
The Agg backend is selected on import for any code that does reach pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib import colors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from sklearn import metrics

from braintumor.io_utils import atomic_write

TRUTH_COLOR = "lime"
PRED_COLOR = "red"
_NON_METRIC_COLUMNS = {"epoch", "step", "time", "lr", "learning_rate"}


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file in the same folder, then ``os.replace``).

    Returns:
        The path written.
    """
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    return path


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str],
    normalize: bool = True,
) -> Figure:
    """Confusion matrix (rows = true class); with ``normalize`` colours are row fractions (recall)
    and each cell reads "fraction (count)"."""
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must be {k}×{k} for {k} class names, got {counts.shape}")
    row_sums = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums > 0)
    if not normalize:
        shown = counts.astype(float)
    size = 2.5 + 0.8 * k
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    display = metrics.ConfusionMatrixDisplay(shown, display_labels=list(class_names))
    display.plot(ax=ax, include_values=False, cmap="Blues", xticks_rotation=45, colorbar=True)
    if normalize:
        display.im_.set_clim(0.0, 1.0)
    threshold = 0.5 * (1.0 if normalize else max(float(shown.max()), 1.0))
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}\n({counts[i, j]})" if normalize else f"{counts[i, j]}"
            color = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    return fig


def _epoch_series(history: pd.DataFrame, column: str) -> pd.Series:
    """One value per epoch (mean of the logged values, NaN rows dropped)."""
    data = history[["epoch", column]].dropna()
    return data.groupby("epoch")[column].mean()


def _plot_series(ax: Axes, history: pd.DataFrame, columns: list[str], ylabel: str) -> None:
    for column in columns:
        series = _epoch_series(history, column)
        ax.plot(series.index, series.to_numpy(), marker="o", markersize=3, label=column)
    if columns:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no {ylabel} columns", ha="center", va="center", transform=ax.transAxes)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def plot_training_curves(history: pd.DataFrame) -> Figure:
    """Loss curves (columns containing "loss") and metric curves (every other numeric column
    except epoch/step/time/lr) against ``epoch``. Rows with NaN (as Lightning's CSV logger writes
    them) are dropped per column; several rows of one epoch are averaged."""
    if "epoch" not in history.columns:
        raise ValueError(
            f"history needs an 'epoch' column, got columns {list(history.columns)}; "
            "read the run's history.csv"
        )
    numeric = [c for c in history.select_dtypes("number").columns if c not in _NON_METRIC_COLUMNS]
    losses = [c for c in numeric if "loss" in c]
    others = [c for c in numeric if "loss" not in c]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    _plot_series(ax_loss, history, losses, "loss")
    _plot_series(ax_metric, history, others, "metric")
    ax_loss.set_title("Loss")
    ax_metric.set_title("Metrics")
    return fig


def _display_plane(image: np.ndarray) -> np.ndarray:
    """H×W stays; C×H×W shows channel 1 when C == 3 (FLAIR in LGG), else channel 0."""
    if image.ndim == 2:
        return image
    if image.ndim == 3:
        return image[1] if image.shape[0] == 3 else image[0]
    raise ValueError(f"images must be H×W or C×H×W, got shape {image.shape}")


def _draw_mask(ax: Axes, mask: Any, shape: tuple[int, ...], color: str, fill: bool) -> None:
    if mask is None:
        return
    plane = np.asarray(mask).astype(bool).squeeze()
    if plane.shape != shape:
        raise ValueError(f"mask of shape {plane.shape} does not match its image {shape}")
    if fill:
        overlay = np.zeros((*shape, 4))
        overlay[plane] = (*colors.to_rgb(color), 0.25)
        ax.imshow(overlay, interpolation="nearest")
    if plane.any():
        ax.contour(plane.astype(float), levels=[0.5], colors=color, linewidths=1.0)


def plot_overlays(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray | None],
    preds: Sequence[np.ndarray | None],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """A grid of cases: image in grey, truth filled and outlined in green, prediction outlined in
    red.

    Args:
        images: H×W or C×H×W float arrays; for C×H×W channel 1 is shown when C == 3 (FLAIR of the
            LGG pre-contrast/FLAIR/post-contrast stack), otherwise channel 0.
        truths: H×W (or 1×H×W) masks, or None.
        preds: H×W (or 1×H×W) masks, or None. With no mask at all (e.g. a sheet of
            misclassified images) the truth/prediction legend is left out.
        titles: one title per case, e.g. "best · dice 0.93".
        ncols: panels per row.
    """
    n = len(images)
    if n == 0 or len(truths) != n or len(preds) != n or (titles is not None and len(titles) != n):
        raise ValueError(
            f"need one truth, prediction (and title) per image, got {n} images, {len(truths)} "
            f"truths, {len(preds)} preds and {None if titles is None else len(titles)} titles"
        )
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(3 * cols, 3 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        plane = _display_plane(np.asarray(images[i], dtype=float))
        low, high = np.percentile(plane, [1, 99])
        ax.imshow(plane, cmap="gray", vmin=low, vmax=max(high, low + 1e-6))
        _draw_mask(ax, truths[i], plane.shape, TRUTH_COLOR, fill=True)
        _draw_mask(ax, preds[i], plane.shape, PRED_COLOR, fill=False)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9 if len(titles[i]) <= 34 else 7)
    if any(t is not None for t in truths) or any(p is not None for p in preds):
        handles = [Patch(color=TRUTH_COLOR, label="truth"), Patch(color=PRED_COLOR, label="prediction")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    return fig


def plot_dice_distribution(per_patient_dice: Sequence[float] | np.ndarray) -> Figure:
    """Histogram (left) and box plot with jittered points (right) of per-patient Dice, with mean
    (dashed) and median (dotted) lines. NaN values are ignored."""
    values = np.asarray(per_patient_dice, dtype=float)
    values = values[np.isfinite(values)]
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax_hist, ax_box = fig.subplots(1, 2, width_ratios=[3, 1])
    if values.size == 0:
        ax_hist.text(0.5, 0.5, "no finite Dice values", ha="center", transform=ax_hist.transAxes)
        return fig
    mean, median = float(values.mean()), float(np.median(values))
    ax_hist.hist(values, bins=20, range=(0.0, 1.0), color="tab:blue", alpha=0.7)
    ax_hist.axvline(mean, color="black", linestyle="--", label=f"mean {mean:.3f}")
    ax_hist.axvline(median, color="tab:red", linestyle=":", label=f"median {median:.3f}")
    ax_hist.set_xlabel("Dice per patient")
    ax_hist.set_ylabel("patients")
    ax_hist.set_xlim(0.0, 1.0)
    ax_hist.legend(fontsize=8, loc="upper left")
    ax_box.boxplot(values, widths=0.5, showfliers=False, medianprops={"color": "tab:red"})
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, values.size)
    ax_box.scatter(1 + jitter, values, s=10, alpha=0.6, color="tab:blue", zorder=3)
    ax_box.axhline(mean, color="black", linestyle="--")
    ax_box.axhline(median, color="tab:red", linestyle=":")
    ax_box.set_ylim(0.0, 1.02)
    ax_box.set_xticks([])
    fig.suptitle(f"Per-patient Dice (n={values.size})")
    return fig


def plot_roc_curves(
    y_true: Sequence[int] | np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> Figure:
    """One-vs-rest ROC curve per class with its AUC; a class absent from (or the only class in)
    ``y_true`` has no curve and is listed as such in the legend."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape != (y.shape[0], len(class_names)):
        raise ValueError(
            f"probs must be N×K = {(y.shape[0], len(class_names))} for {y.shape[0]} labels and "
            f"{len(class_names)} class names, got {p.shape}"
        )
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for k, name in enumerate(class_names):
        positive = y == k
        if positive.all() or not positive.any():
            ax.plot([], [], linestyle="none", label=f"{name}: no curve (single class)")
            continue
        fpr, tpr, _ = metrics.roc_curve(positive, p[:, k])
        auc = metrics.roc_auc_score(positive, p[:, k])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title("ROC, one-vs-rest")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def plot_metric_vs_parameter(
    values: Sequence[float | str],
    means: Sequence[float],
    stds: Sequence[float] | None = None,
    xlabel: str = "parameter",
    ylabel: str = "metric",
) -> Figure:
    """Mean ± std of a metric against a swept parameter (e.g. the ROI expansion factor).

    Numeric values form a line; non-numeric labels (e.g. ``"whole"`` for the whole image) are
    drawn as separate square points to the right of the line, labelled with their name.
    """
    n = len(values)
    errors = np.zeros(n) if stds is None else np.asarray(stds, dtype=float)
    if len(means) != n or errors.shape != (n,):
        raise ValueError(
            f"values, means and stds must have the same length, got {n}, {len(means)} and {errors.shape[0]}"
        )
    numbers = [_as_number(v) for v in values]
    numeric = [i for i, x in enumerate(numbers) if x is not None]
    labelled = [i for i, x in enumerate(numbers) if x is None]
    xs = np.array([numbers[i] for i in numeric], dtype=float)
    order = np.argsort(xs)
    step = float(np.median(np.diff(xs[order]))) if xs.size > 1 else 1.0
    start = float(xs.max()) + step if xs.size else 0.0
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    mean_arr = np.asarray(means, dtype=float)
    if numeric:
        idx = np.asarray(numeric)[order]
        ax.errorbar(xs[order], mean_arr[idx], yerr=errors[idx], marker="o", capsize=3)
    ticks, tick_labels = [float(x) for x in xs[order]], [f"{x:g}" for x in xs[order]]
    for j, i in enumerate(labelled):
        x = start + j * step
        ax.errorbar([x], [mean_arr[i]], yerr=[errors[i]], marker="s", color="tab:red", capsize=3)
        ticks.append(x)
        tick_labels.append(str(values[i]))
    ax.set_xticks(ticks, tick_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig


def select_cases(scores: pd.DataFrame, column: str = "dice", n: int = 1) -> dict[str, list[Any]]:
    """Row index labels of the ``n`` best, median and worst cases by ``column`` (NaN skipped).

    ``best`` is sorted best first, ``worst`` worst first, ``median`` closest to the median first;
    with fewer than 3·n rows the groups may overlap.
    """
    if column not in scores.columns:
        raise ValueError(f"no column {column!r} in scores; columns are {list(scores.columns)}")
    valid = scores[column].dropna()
    ascending = valid.sort_values(kind="stable")
    descending = valid.sort_values(ascending=False, kind="stable")
    closeness = (valid - valid.median()).abs().sort_values(kind="stable")
    return {
        "best": descending.index[:n].tolist(),
        "median": closeness.index[:n].tolist(),
        "worst": ascending.index[:n].tolist(),
    }
