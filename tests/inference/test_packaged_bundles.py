"""The bundles shipped in the package load, say how they were made, and analyse real scans with
no other argument (``braintumor analyze IMAGE``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from braintumor.bundle.load import (
    PACKAGED_BUNDLES,
    bundle_info,
    default_bundle_path,
    resolve_bundle_path,
)
from braintumor.bundle.store import BundleError
from braintumor.cli import app
from braintumor.data.readers import read_mask

HEADLINE = {"seg": "dice_per_patient_mean", "cls": "accuracy", "gate": "accuracy"}


@pytest.mark.parametrize("name", PACKAGED_BUNDLES)
def test_packaged_bundle_is_small_verified_and_documented(name: str) -> None:
    path = default_bundle_path(name)
    assert resolve_bundle_path(name) == path
    info = bundle_info(path)
    assert info["verified"] and info["name"] == name and info["dtype"] == "float16"
    assert info["training_command"].startswith("braintumor ") and "../shared/data" in info["data"]
    for role, model in info["models"].items():
        if model["metrics"].get("held_out") == 0:  # trained on every patient: its figures are its CV's
            assert model["metrics"]["train_patients"] > 0 and model["monitor"] is None, role
            continue
        score = model["metrics"][HEADLINE[role.rstrip("0123456789")]]  # cls2, cls3...: ensemble members
        assert 0.5 < score <= 1.0, (role, score)  # measured on data the model never saw
    assert all(f["bytes"] < 5e6 for f in info["files"].values())  # no file over the repo limit
    total = sum(f["bytes"] for f in info["files"].values())
    assert total < 24e6, f"{name}: {total / 1e6:.1f} MB"  # t1ce: 7 networks of 3.2 MB, 0.3 MB profile


def test_unknown_packaged_name_lists_the_choices() -> None:
    with pytest.raises(BundleError, match="t1ce, flair-lgg"):
        default_bundle_path("t2")


def test_analyze_a_figshare_slice_with_no_bundle_argument(shared_data: Path, tmp_path: Path) -> None:
    image = shared_data / "figshare" / "images" / "1011.png"
    result = CliRunner().invoke(app, ["analyze", str(image), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bundle"].endswith("t1ce") and summary["n_ok"] == 1
    entry = summary["results"][0]
    assert entry["class"] in {"meningioma", "glioma", "pituitary", "notumor"}
    if entry["tumour"]:
        assert set(entry["probabilities"]) == {"meningioma", "glioma", "pituitary"}
        assert sum(entry["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert (tmp_path / "analysis.csv").is_file()


def test_flair_bundle_segments_an_lgg_slice(shared_data: Path, tmp_path: Path) -> None:
    from braintumor.inference.analyzer import Analyzer

    folder = shared_data / "lgg" / "kaggle_3m" / "TCGA_CS_4942_19970222"
    image = folder / "TCGA_CS_4942_19970222_11.tif"
    truth = read_mask(folder / "TCGA_CS_4942_19970222_11_mask.tif").astype(bool)
    result = Analyzer.from_bundle("flair-lgg").analyze(image)
    assert result.ok and result.tumour and result.label == "tumour" and not result.probabilities
    mask = np.asarray(result.slices[0].mask, bool)
    assert mask.shape == truth.shape == (256, 256)
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.5, dice  # a patient of the training sample: checks the weights, not generalisation


def test_kaggle4_bundle_classifies_a_kaggle_slice_without_a_mask(shared_data: Path, tmp_path: Path) -> None:
    from braintumor.inference.analyzer import Analyzer

    image = next(iter(sorted((shared_data / "kaggle4" / "Testing" / "pituitary").glob("*.jpg"))))
    result = Analyzer.from_bundle("kaggle4").analyze(image)
    assert result.ok and set(result.probabilities) == {"glioma", "meningioma", "notumor", "pituitary"}
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.label == max(result.probabilities, key=result.probabilities.__getitem__)
    assert all(s.mask is None or not np.asarray(s.mask).any() for s in result.slices)  # no segmenter
