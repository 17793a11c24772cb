"""Every plot returns a Figure and saves as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from braintumor.reports import (
    plot_confusion_matrix,
    plot_dice_distribution,
    plot_metric_vs_parameter,
    plot_overlays,
    plot_roc_curves,
    plot_training_curves,
    save_figure,
    select_cases,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(fig: Figure, path: Path) -> None:
    assert isinstance(fig, Figure)
    written = save_figure(fig, path, dpi=40)
    data = written.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 100
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_confusion_matrix(tmp_path: Path) -> None:
    fig = plot_confusion_matrix([[2, 1, 0], [0, 1, 1], [0, 0, 0]], ["a", "b", "c"])
    _assert_png(fig, tmp_path / "confusion.png")
    with pytest.raises(ValueError, match="3×3"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"])


def test_training_curves(tmp_path: Path) -> None:
    history = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1],
            "train_loss": [1.0, np.nan, 0.8, np.nan],
            "val_loss": [np.nan, 1.1, np.nan, 0.9],
            "val_dice": [np.nan, 0.4, np.nan, 0.6],
        }
    )
    _assert_png(plot_training_curves(history), tmp_path / "curves.png")


def test_overlays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((16, 16), dtype=np.uint8)
    truth[4:10, 4:10] = 1
    pred = np.roll(truth, 2, axis=1)
    images = [rng.random((3, 16, 16)), rng.random((16, 16))]
    fig = plot_overlays(images, [truth, None], [pred[None], np.zeros_like(pred)], ["best", "worst"])
    _assert_png(fig, tmp_path / "overlays.png")


def test_dice_distribution(tmp_path: Path) -> None:
    fig = plot_dice_distribution([0.9, 0.85, 0.2, np.nan, 0.95])
    _assert_png(fig, tmp_path / "dice.png")


def test_roc_curves(tmp_path: Path) -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]])
    _assert_png(plot_roc_curves(y, probs, ["a", "b", "c"]), tmp_path / "roc.png")


def test_metric_vs_parameter(tmp_path: Path) -> None:
    fig = plot_metric_vs_parameter(
        [1.0, 1.5, 2.0, "whole"],
        [0.8, 0.85, 0.83, 0.7],
        [0.05, 0.04, 0.05, 0.1],
        "expansion",
        "acc",
    )
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["1", "1.5", "2", "whole"]
    _assert_png(fig, tmp_path / "sweep.png")


def test_select_cases() -> None:
    scores = pd.DataFrame({"dice": [0.5, 0.9, np.nan, 0.1, 0.6, 0.3]}, index=list("abcdef"))
    cases = select_cases(scores, n=1)
    assert cases == {"best": ["b"], "median": ["a"], "worst": ["d"]}
    assert select_cases(scores, n=2)["best"] == ["b", "e"]
