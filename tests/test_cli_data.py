"""CLI data commands: --json prints exactly one JSON object; errors are one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from braintumor.cli import app

runner = CliRunner()


def run_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.realdata
def test_inspect_lgg_json(shared_data: Path) -> None:
    report = run_json("data", "inspect", str(shared_data / "lgg" / "kaggle_3m"))
    assert report["format"] == "lgg"
    assert (report["n_patients"], report["n_samples"], report["n_with_tumour"]) == (8, 191, 73)
    assert report["per_class"] == {"glioma": 191} and report["problems"] == []


def test_phantoms_split_inspect(tmp_path: Path) -> None:
    made = run_json("data", "phantoms", str(tmp_path / "ph"), "--n", "8", "--slices", "3", "--size", "32")
    assert made["n_samples"] == 24 and made["n_patients"] == 8
    report = run_json("data", "inspect", str(tmp_path / "ph"))
    assert report["format"] == "phantom" and report["n_samples"] == 24
    splits = run_json(
        "data", "split", str(tmp_path / "ph"), "--out", str(tmp_path / "s.json"), "--folds", "4"
    )
    assert splits["method"] == "patient-kfold" and len(splits["folds"]) == 4
    saved = json.loads((tmp_path / "s.json").read_text())
    for fold in saved["folds"]:
        assert not set(fold["train"]) & set(fold["test"])


@pytest.mark.realdata
def test_dedup_kaggle(shared_data: Path) -> None:
    report = run_json("data", "dedup", str(shared_data / "kaggle4"))
    assert report["n_train"] == 480 and report["n_test"] == 160
    assert 0 <= report["n_test_with_duplicate"] <= 160
    assert len(report["duplicate_test_ids"]) == report["n_test_with_duplicate"]


def test_inspect_missing_path_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"][0]["problem"] == "path not found"
