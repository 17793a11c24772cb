"""Self-contained HTML (and Markdown) reports built from fake result folders."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.errors import DataError
from braintumor.reports.document import fmt
from braintumor.reports.html import report_targets, write_report

CONFIG = {
    "data": {"path": "../shared/data/lgg128/kaggle_3m", "roi_expansion": None},
    "model": {"name": "unet-small"},
    "train": {"task": "segment", "epochs": 2, "lr": 0.00123},
}


def _png(path: Path, label: str) -> Path:
    fig = Figure(figsize=(2, 1.5))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0.5])
    ax.set_title(label)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=40)
    return path


def _history(folder: Path) -> None:
    pd.DataFrame({"epoch": [0, 1], "train_loss": [0.9, 0.5], "val_dice": [0.41, 0.6789]}).to_csv(
        folder / "history.csv", index=False
    )


def segmentation_run(
    folder: Path, figures: tuple[str, ...] = ("curves", "overlays", "dice_per_patient")
) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    _history(folder)
    for name in figures:
        _png(folder / f"{name}.png", name)
    patients = [{"patient_id": "TCGA_CS_4942", "n_slices": 20, "dice": 0.8123, "iou": 0.7},
                {"patient_id": "TCGA_HT_7602", "n_slices": 20, "dice": 0.4567, "iou": 0.3}]  # fmt: skip
    pd.DataFrame(patients).to_csv(folder / "per_patient.csv", index=False)
    metrics = {"task": "segment", "fold": 0, "dice_per_patient_mean": 0.6345, "iou": 0.5012,
               "hd95": 7.25, "n_patients": 2, "train_seconds": 12.5, "per_patient": patients}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def classification_run(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "train": {"task": "classify"}}))
    for name in ("curves", "confusion", "roc", "misclassified", "gradcam_case1"):
        _png(folder / f"{name}.png", name)
    per_class = {
        "glioma": {"precision": 0.9111, "recall": 0.8222, "f1": 0.8644, "support": 45},
        "meningioma": {"precision": 0.7333, "recall": 0.8462, "f1": 0.7857, "support": 26},
    }
    metrics = {
        "task": "classify", "fold": 1, "accuracy": 0.8321, "macro_f1": 0.8250, "per_class": per_class,
        "confusion": [[37, 8], [4, 22]], "near_duplicates": {"n_test": 71, "threshold": 4},
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def _data_urls(html: str) -> list[str]:
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html and "<link" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_single_segmentation_run_embeds_every_figure_and_metric(tmp_path: Path) -> None:
    run = tmp_path / "run"
    metrics = segmentation_run(run)
    written = write_report(run)
    html = Path(written["html"]).read_text()
    _assert_self_contained(html)
    embedded = set(_data_urls(html))
    for name in ("curves", "overlays", "dice_per_patient"):
        assert base64.b64encode((run / f"{name}.png").read_bytes()).decode() in embedded, name
    assert written["figures"] == 3
    for value in ("0.6345", "0.5012", "7.2500", "0.8123", "0.4567", "TCGA_HT_7602", "0.6789"):
        assert value in html, value
    assert "lr: 0.00123" in html and "unet-small" in html  # config.yaml shown
    assert html.index("TCGA_HT_7602") < html.index("TCGA_CS_4942")  # worst Dice first
    markdown = Path(written["markdown"]).read_text()
    assert "| dice_per_patient_mean | 0.6345 |" in markdown and "](overlays.png)" in markdown
    assert "metrics" not in written  # the run's own metrics.json is already there
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert not list(run.glob(".*.tmp"))


def test_classification_run_to_another_folder_copies_metrics(tmp_path: Path) -> None:
    run = classification_run(tmp_path / "clf")
    out = tmp_path / "reports"
    written = write_report(tmp_path / "clf", out)
    html = (out / "report.html").read_text()
    assert len(_data_urls(html)) == 5
    assert "Grad-CAM (gradcam_case1.png)" in html
    for value in ("0.8321", "0.9111", "0.8462", "meningioma", "true \\ predicted", "near_duplicates.n_test"):
        assert value in html, value
    assert json.loads((out / "metrics.json").read_text()) == run
    assert written["metrics"] == str(out / "metrics.json")
    markdown = (out / "report.md").read_text()
    assert "](../clf/roc.png)" in markdown and "| glioma | 0.9111 |" in markdown


def test_curves_are_drawn_from_history_when_the_png_is_missing(tmp_path: Path) -> None:
    segmentation_run(tmp_path / "run", figures=())
    html = Path(write_report(tmp_path / "run")["html"]).read_text()
    assert len(_data_urls(html)) == 1 and "drawn from history.csv" in html


def _cv(folder: Path) -> dict:
    for k in (0, 1):
        segmentation_run(folder / f"fold{k}")
    summary = {"task": "segment", "n_folds": 2, "mean": {"dice_per_patient_mean": 0.7111},
               "std": {"dice_per_patient_mean": 0.0222}, "folds": [{"fold": 0}, {"fold": 1}]}  # fmt: skip
    (folder / "cv_metrics.json").write_text(json.dumps(summary))
    pd.DataFrame({"fold": [0, 1], "dice_per_patient_mean": [0.6889, 0.7333]}).to_csv(
        folder / "cv_folds.csv", index=False
    )
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return summary


def test_cv_run_shows_mean_std_folds_and_each_folds_figures(tmp_path: Path) -> None:
    summary = _cv(tmp_path / "cv")
    written = write_report(tmp_path / "cv", tmp_path / "out")
    html = Path(written["html"]).read_text()
    for value in ("0.7111", "0.0222", "0.6889", "0.7333", "Fold 0", "Fold 1", "<details"):
        assert value in html, value
    assert len(_data_urls(html)) == 6 and written["kind"] == "cv"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == summary


def test_sweep_folder_shows_factors_plot_and_arms(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _cv(sweep / "roi-1.5")
    _png(sweep / "sweep.png", "sweep")
    rows = [{"factor": "1.5", "accuracy_mean": 0.8765, "accuracy_std": 0.01, "n_samples": 389}]
    result = {"rows": rows, "best_factor": "1.5", "metric": "val_accuracy", "best_on_test": "1.25"}
    (sweep / "sweep.json").write_text(json.dumps(result))
    html = Path(write_report(sweep)["html"]).read_text()
    assert "best on the test folds (optimistic)" in html and "1.25" in html
    assert base64.b64encode((sweep / "sweep.png").read_bytes()).decode() in _data_urls(html)
    assert "0.8765" in html and "Arm roi-1.5" in html and "0.7111" in html


def test_folder_without_results_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing to report"):
        write_report(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1


def test_cli_report_several_runs_into_named_folders(tmp_path: Path) -> None:
    segmentation_run(tmp_path / "a")
    classification_run(tmp_path / "b")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)["reports"]
    assert [r["kind"] for r in reports] == ["single", "single"]
    for name in ("a", "b"):
        assert {p.name for p in (out / name).iterdir()} == {"report.html", "report.md", "metrics.json"}


def test_report_targets_disambiguate_repeated_names(tmp_path: Path) -> None:
    targets = report_targets([tmp_path / "x" / "run", tmp_path / "y" / "run"], tmp_path / "o")
    assert targets == [tmp_path / "o" / "run", tmp_path / "o" / "run-2"]
    assert report_targets([tmp_path], None) == [None]


FMT_CASES = [(None, "–"), (float("nan"), "–"), (3, "3"), (2.0, "2"), (0.123456, "0.1235"),
             (1.5e-7, "1.5e-07"), (0.000561, "0.000561"),
             (123456.0, "123456"), (True, "yes")]  # fmt: skip


@pytest.mark.parametrize(("value", "text"), FMT_CASES)
def test_fmt(value: object, text: str) -> None:
    assert fmt(value) == text
