"""A whole tiny study on phantoms through the CLI: outputs, reuse on rerun, refusal of changed settings;
the region-feature fusion as its own step and inside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.data.phantom import generate_phantoms
from braintumor.errors import ConfigError
from braintumor.experiments import load_study, run_study

BASE = {
    "data": {"image_size": 32, "folds": 2, "normalization": "percentile-image", "val_fraction": 0.2},
    "train": {"epochs": 1, "batch_size": 8, "precision": "32-true"},
}
SEG = {"model": {"name": "unet", "kwargs": {"init_features": 4}}, "train": {"task": "segment"}}
CLS = {"model": {"name": "cnn-small", "kwargs": {"channels": [4, 8]}},
       "train": {"task": "classify", "loss": "ce"}, "data": {"roi_expansion": 1.5}}  # fmt: skip


def _merge(*parts: dict) -> dict:
    out: dict = {}
    for part in parts:
        for section, values in part.items():
            out.setdefault(section, {}).update(values)
    return out


@pytest.fixture
def study(tmp_path: Path) -> Path:
    generate_phantoms(tmp_path / "phantoms", n_patients=8, slices_per_patient=3, size=32, seed=1)
    (tmp_path / "seg.yaml").write_text(yaml.safe_dump(_merge(BASE, SEG)))
    (tmp_path / "cls.yaml").write_text(yaml.safe_dump(_merge(BASE, CLS)))
    spec = {
        "name": "tiny", "description": "segment then classify phantoms",
        "data": {"phantoms": "phantoms"},
        "anchors": {"dice": {"value": 0.75, "source": "made up"}},
        "quick": {"set": ["train.batch_size=4"], "trainer": {"limit_train_batches": 1}},
        "steps": [
            {"name": "seg", "kind": "train", "config": "seg.yaml"},
            {"name": "cls", "kind": "train", "config": "cls.yaml", "splits_from": "seg"},
            {"name": "pipeline", "kind": "pipeline", "seg": "seg", "cls": "cls"},
            {"name": "pipeline-fused", "kind": "pipeline", "seg": "seg", "cls": "cls", "fuse_weight": 0.5},
            {"name": "fused", "kind": "fuse", "cls": "cls", "trees": 5},
            {"name": "table", "kind": "compare", "runs": ["seg", "cls"]},
        ],
    }  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_study_runs_resumes_and_refuses_changed_settings(study: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["experiment", "run", str(study), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # exactly one JSON object
    assert printed["status"] == "done" and [s["status"] for s in printed["steps"]] == ["ran"] * 6
    record = json.loads((run / "study.json").read_text())
    pipeline = next(s for s in record["steps"] if s["name"] == "pipeline")
    assert (
        0 <= pipeline["metrics"]["accuracy"]["mean"] <= 1 and pipeline["metrics"]["accuracy"]["std"] is None
    )
    dice = next(r for r in record["table"] if r["step"] == "pipeline" and r["metric"] == "dice_per_patient")
    assert dice["anchor"] == 0.75 and dice["anchor_name"] == "dice"
    assert "patient-level 2-fold" in pipeline["protocol"]
    files = (
        "summary.md",
        "report.html",
        "report.md",
        "study.yaml",
        "seg/report.html",
        "pipeline/report.html",
    )
    for name in (*files, "table/compare.md", "seg/step.json"):
        assert (run / name).is_file(), name
    assert not list(run.rglob("*.ckpt"))  # resume checkpoints go once a step is finished
    assert json.loads((run / "cls" / "splits.json").read_text()) == json.loads(
        (run / "seg" / "splits.json").read_text()
    )
    summary = (run / "summary.md").read_text()
    assert (
        "| pipeline |" in summary and "dice 0.75 (made up)" in summary and "## Comparison: table" in summary
    )
    html = (run / "report.html").read_text()
    assert "Study tiny" in html and "accuracy_gt_crop" in html
    _check_fusion(run, record, summary)

    again = run_study(load_study(study), run)
    assert [s["status"] for s in again["steps"]] == ["reused"] * 6
    assert again["table"] == record["table"]
    with pytest.raises(ConfigError, match=r"seg: was run with other settings \(overrides, trainer changed"):
        run_study(load_study(study), run, quick=True)
    _check_fusion_resume(study, run)


def _edit_step(study: Path, name: str, **values: object) -> None:
    spec = yaml.safe_load(study.read_text())
    next(s for s in spec["steps"] if s["name"] == name).update(values)
    study.write_text(yaml.safe_dump(spec, sort_keys=False))


def _check_fusion(run: Path, record: dict, summary_md: str) -> None:
    """The fuse step's results and headlines, and the fused scores of the pipeline with fuse_weight."""
    steps = {s["name"]: s for s in record["steps"]}
    fused = steps["fused"]
    summary = json.loads((run / "fused" / "cv_metrics.json").read_text())
    assert summary["task"] == "fusion" and summary["n_folds"] == 1
    fold = json.loads((run / "fused" / "fold0" / "metrics.json").read_text())
    assert fold["weight_cnn"] == 0.5 and fold["trees"] == 5 and fold["cls_run"] == str(run / "cls")
    for name in ("cv_folds.csv", "fold0/predictions.csv", "fold0/confusion.png", "report.html", "step.json"):
        assert (run / "fused" / name).is_file(), name
    # the patient vote is a headline where the fold scored one (test patients of several tumour slices)
    headlines = ["accuracy", "macro_f1", "accuracy_cnn", "accuracy_forest"]
    headlines += ["accuracy_patient_vote"] if "accuracy_patient_vote" in fold else []
    assert set(fused["metrics"]) == set(headlines)
    for metric, value in fused["metrics"].items():
        assert value["mean"] == pytest.approx(summary["mean"][metric]) and value["std"] is None, metric
    # The CNN's accuracy on its own test slices is the classifier run's accuracy.
    own = json.loads((run / "cls" / "metrics.json").read_text())
    assert fused["metrics"]["accuracy_cnn"]["mean"] == pytest.approx(own["accuracy"])
    assert fused["data"] == "phantoms" and "patient-level 2-fold" in fused["protocol"]
    assert fused["protocol"].endswith(
        "CNN averaged with a region-feature forest fitted on each fold's training patients"
    )
    rows = [r for r in record["table"] if r["step"] == "fused"]
    assert [r["metric"] for r in rows] == headlines
    assert all(r["kind"] == "fuse" for r in rows)
    assert "| fused |" in summary_md and "accuracy_forest" in summary_md

    plain, fused_pipe = steps["pipeline"]["metrics"], steps["pipeline-fused"]["metrics"]
    assert "accuracy_fused" not in plain and "accuracy_gt_crop_fused" not in plain
    for metric in ("accuracy_fused", "accuracy_gt_crop_fused"):
        assert 0 <= fused_pipe[metric]["mean"] <= 1 and fused_pipe[metric]["std"] is None, metric
    # Apart from the fused scores, both pipeline steps score the same models on the same slices.
    assert fused_pipe["accuracy"] == plain["accuracy"]
    pipe_fold = json.loads((run / "pipeline-fused" / "fold0" / "metrics.json").read_text())
    assert (
        pipe_fold["fuse_weight"] == 0.5
        and (run / "pipeline-fused" / "fold0" / "confusion_fused.png").is_file()
    )
    assert (
        "CNN share 0.5" in steps["pipeline-fused"]["protocol"]
        and "forest" not in steps["pipeline"]["protocol"]
    )


def _check_fusion_resume(study: Path, run: Path) -> None:
    """A fuse step with its default spelled out is reused; a changed weight or fuse_weight is refused."""
    _edit_step(study, "fused", weight=0.5)
    assert [s["status"] for s in run_study(load_study(study), run)["steps"]] == ["reused"] * 6
    _edit_step(study, "fused", weight=0.7)
    with pytest.raises(ConfigError, match=r"fused: was run with other settings \(options changed"):
        run_study(load_study(study), run)
    _edit_step(study, "fused", weight=0.5)
    _edit_step(study, "pipeline-fused", fuse_weight=0.6)
    with pytest.raises(ConfigError, match=r"pipeline-fused: was run with other settings \(options changed"):
        run_study(load_study(study), run)


def test_cli_reports_a_bad_study_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "data": {"d": "."}, "steps": [{"name": "a", "kind": "fit"}]}))
    result = CliRunner().invoke(app, ["experiment", "run", str(bad), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "unknown kind 'fit'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
