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
def test_dedup_kaggle_against_figshare(shared_data: Path, tmp_path: Path) -> None:
    """A few real Kaggle files (one Testing image copied in Training) and two figshare slices."""
    import shutil

    kaggle, figshare = tmp_path / "kaggle4", tmp_path / "figshare"
    picks = {"Training/glioma/Tr-gl_0010.jpg": "Training/glioma/Tr-gl_0010.jpg",
             "Training/notumor/Tr-no_0010.jpg": "Training/notumor/Tr-no_0010.jpg",
             "Testing/notumor/Te-no_0016.jpg": "Testing/notumor/Te-no_0016.jpg",
             "Testing/glioma/Tr-gl_0122.jpg": "Training/glioma/Tr-gl_0122.jpg",
             "Testing/notumor/Tr-no_0010-copy.jpg": "Training/notumor/Tr-no_0010.jpg"}  # fmt: skip
    for target, source in picks.items():
        (kaggle / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "kaggle4" / source, kaggle / target)
    (figshare / "images").mkdir(parents=True)
    for name in ("tumor_metadata.csv", "figshare_pid.csv", "figshare_cvind_fold.csv"):
        shutil.copy(shared_data / "figshare" / name, figshare / name)
    for stem in ("1901", "2658"):
        shutil.copy(shared_data / "figshare" / "images" / f"{stem}.png", figshare / "images")
    report = run_json("data", "dedup", str(kaggle), "--against", str(figshare))
    assert (report["n_train"], report["n_test"]) == (2, 3)
    assert report["kinds"] == {"exact": 1, "near": 0, "mirror": 0}
    assert report["reference"]["n_train_copies"] == 1 and report["reference"]["n_test_copies"] == 1
    assert sorted(report["duplicate_test_ids"]) == [
        "Testing/glioma/Tr-gl_0122",
        "Testing/notumor/Tr-no_0010-copy",
    ]


def test_inspect_missing_path_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"][0]["problem"] == "path not found"
