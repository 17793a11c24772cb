"""The scored pipeline is the shipped pipeline: ``evaluate --as-shipped`` on a run and ``analyze``
with the bundle made from that run give the same masks, labels and metrics on the same patients."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from braintumor.bundle.create import create_bundle, from_run
from braintumor.bundle.load import load_bundle
from braintumor.cli import app
from braintumor.config import load_config
from braintumor.data.phantom import load_phantoms
from braintumor.data.readers import read_mask
from braintumor.data.splits import Splits
from braintumor.data.volumes import nifti_to_view
from braintumor.evaluation import SegmentationAccumulator
from braintumor.experiments.shipped import evaluate_as_shipped, predict_as_shipped
from braintumor.training.evaluate import evaluate_run
from braintumor.training.runner import train_fold

# per-patient normalisation and per-patient (3D) post-processing: what a patient folder must get
VOLUME_RUN = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-volume", "train.batch_size=8", "train.precision=32-true",
    "train.epochs=20", "train.lr=0.003", "model.name=unet", "model.kwargs={init_features: 8}",
    "eval.largest_component=true", "eval.fill_holes=true", "eval.postprocess_scope=patient",
]  # fmt: skip


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("volume-run")
    cfg = load_config(None, [*VOLUME_RUN, f"data.cache_dir={root / 'cache'}"])
    train_fold(cfg, root / "seg", trainer_overrides={"enable_progress_bar": False})
    return root / "seg"


def test_bundle_records_the_runs_evaluation_settings(volume_run: Path) -> None:
    analysis = from_run(volume_run).analysis
    assert analysis["postprocess_scope"] == "patient" and analysis["largest_component"] is True
    assert analysis["threshold"] == 0.5 and analysis["tta_flips"] == ["none"]


def test_evaluate_as_shipped_equals_analyze_with_the_bundle(volume_run: Path, tmp_path: Path) -> None:
    metrics = evaluate_as_shipped(volume_run)
    assert metrics["engine"] == "shipped" and metrics["external"] is False
    assert (
        json.loads((volume_run / "shipped" / "metrics.json").read_text())["dice_per_patient_mean"]
        == metrics["dice_per_patient_mean"]
    )

    index = load_phantoms(volume_run / "phantoms")
    test = sorted(Splits.load(volume_run / "splits.json").folds[0]["test"])
    shipped = predict_as_shipped(from_run(volume_run), index, set(test))
    assert [r.name for r in shipped.results] == test  # one volume per patient

    # a new user: bundle the run, put each patient's slices in a folder, analyse the folders
    create_bundle(volume_run, None, tmp_path / "bundle")
    assert load_bundle(tmp_path / "bundle").analysis == from_run(volume_run).analysis
    frame = index.frame
    for pid in test:
        folder = tmp_path / "patients" / pid
        folder.mkdir(parents=True)
        for image in frame.loc[frame["patient_id"] == pid, "image"]:
            shutil.copy(image, folder / Path(image).name)
    out = tmp_path / "analysis"
    args = ["analyze", *[str(tmp_path / "patients" / p) for p in test], "--bundle", str(tmp_path / "bundle")]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--precision", "fp32", "--json"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["input"]).name: r for r in json.loads(result.stdout)["results"]}

    acc = SegmentationAccumulator(store_masks=True)
    for res, rows_of in zip(shipped.results, shipped.rows, strict=True):
        entry = rows[res.name]
        assert entry["kind"] == "volume" and entry["class"] == res.label
        nifti = nib.load(entry["outputs"]["mask_nifti"])
        analysed = nifti_to_view(np.asarray(nifti.dataobj), nifti.affine)
        expected = np.stack([s.mask for s in res.slices])
        np.testing.assert_array_equal(analysed, expected)
        truths = np.stack([read_mask(frame.at[r, "mask"], analysed.shape[1:]) for r in rows_of])
        keys = [float(frame.at[r, "slice"]) for r in rows_of]
        acc.add(
            analysed,
            truths,
            [res.name] * len(rows_of),
            [str(frame.at[r, "sample_id"]) for r in rows_of],
            keys,
        )
    per_patient = acc.per_patient().set_index("patient_id")["dice"]
    for entry in metrics["per_patient"]:
        assert per_patient[entry["patient_id"]] == pytest.approx(entry["dice"], abs=1e-9)


def test_shipped_and_cached_evaluation_score_the_same_slices(volume_run: Path) -> None:
    """Training-time evaluation (float16 cache, model resolution, no minimum tumour area) and the
    shipped one score the same patients and slices with the same post-processing."""
    shipped = evaluate_as_shipped(volume_run)
    cached = evaluate_run(volume_run)
    assert [p["patient_id"] for p in shipped["per_patient"]] == [
        p["patient_id"] for p in cached["per_patient"]
    ]
    assert shipped["n_slices"] == cached["n_slices"]
    for key in ("threshold", "largest_component", "fill_holes", "component_fraction", "postprocess_scope"):
        assert shipped["analysis"][key] == cached["evaluation"][key]


def test_cli_evaluate_as_shipped(volume_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", str(volume_run), "--as-shipped", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["engine"] == "shipped"
    assert (tmp_path / "shipped" / "per_patient.csv").is_file()
    refused = CliRunner().invoke(app, ["evaluate", str(volume_run), "--as-shipped", "--tta"])
    assert refused.exit_code != 0 and "--as-shipped" in refused.output
