"""Plots (Agg backend, returning Figures) and reports built from a run's result files."""

from braintumor.reports.plots import (
    plot_confusion_matrix,
    plot_dice_distribution,
    plot_metric_vs_parameter,
    plot_overlays,
    plot_roc_curves,
    plot_training_curves,
    save_figure,
    select_cases,
)

__all__ = [
    "plot_confusion_matrix",
    "plot_dice_distribution",
    "plot_metric_vs_parameter",
    "plot_overlays",
    "plot_roc_curves",
    "plot_training_curves",
    "save_figure",
    "select_cases",
]
