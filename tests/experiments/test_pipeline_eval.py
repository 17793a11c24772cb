"""Segment -> crop -> classify evaluation on tiny phantoms (64 px, 1 epoch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from braintumor.config import load_config
from braintumor.data.phantom import generate_phantoms
from braintumor.errors import DataError
from braintumor.experiments.pipeline_eval import classifier_input, evaluate_pipeline
from braintumor.experiments.segment import TrainedModel, fold_runs, predict_masks
from braintumor.training.runner import train_fold

QUIET = {"enable_progress_bar": False, "limit_train_batches": 2, "limit_val_batches": 1}
TINY = ["data.image_size=64", "data.folds=2", "data.normalization=percentile-image", "train.batch_size=8",
        "train.precision=32-true", "train.epochs=1", "data.val_fraction=0.2"]  # fmt: skip
SEG = ["model.name=unet", "model.kwargs={init_features: 4}"]
CLS = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "model.kwargs={channels: [4, 8]}",
       "data.roi_expansion=1.5"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``seg`` and ROI ``cls`` runs of fold 0 on one set of splits, phantoms in ``data``."""
    root = tmp_path_factory.mktemp("pipeline")
    generate_phantoms(root / "data", n_patients=8, slices_per_patient=4, size=64, seed=3)
    cache = f"data.cache_dir={root / 'cache'}"
    data = f"data.path={root / 'data'}"
    train_fold(load_config(None, [*TINY, *SEG, cache, data]), root / "seg", trainer_overrides=QUIET)
    (root / "cls").mkdir()
    shutil.copy(root / "seg" / "splits.json", root / "cls" / "splits.json")
    train_fold(load_config(None, [*TINY, *CLS, cache, data]), root / "cls", trainer_overrides=QUIET)
    return root


def test_pipeline_scores_the_folds_test_patients(runs: Path, tmp_path: Path) -> None:
    summary = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe")
    fold = json.loads((tmp_path / "pipe" / "fold0" / "metrics.json").read_text())
    assert summary["n_folds"] == 1 and summary["task"] == "pipeline"
    for key in ("dice_per_patient_mean", "dice_per_slice_mean", "accuracy", "macro_f1", "accuracy_gt_crop"):
        assert 0.0 <= fold[key] <= 1.0, key
        assert summary["mean"][key] == pytest.approx(fold[key])
    test = set(json.loads((runs / "seg" / "splits.json").read_text())["folds"][0]["test"])
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv")
    assert set(per_slice["patient_id"]) == test and fold["n_patients"] == len(test)
    classified = per_slice.dropna(subset=["pred_pipeline"])
    assert len(classified) == fold["n_classified"] == (per_slice["true_area"] > 0).sum()
    assert fold["n_fallback_whole_slice"] == (classified["crop"] != "predicted mask").sum()
    # The ground-truth crops are the classifier's own test set: its accuracy is reproduced.
    own = json.loads((runs / "cls" / "metrics.json").read_text())
    assert fold["accuracy_gt_crop"] == pytest.approx(own["accuracy"], abs=0.1)
    assert (tmp_path / "pipe" / "cv_metrics.json").is_file() and (
        tmp_path / "pipe" / "fold0" / "confusion.png"
    ).is_file()


def test_predicted_masks_match_the_runs_own_dice(runs: Path) -> None:
    """Masks predicted from raw files, mapped back to 64 px, agree with the training evaluation."""
    from braintumor.data.readers import read_image, read_mask

    seg = TrainedModel.load(runs / "seg", "segment")
    per_slice = pd.read_csv(runs / "seg" / "per_slice.csv").set_index("sample_id")
    folder = runs / "data"
    sids = list(per_slice.index[:6])
    raws = [read_image(folder / "images" / f"{s}.png") for s in sids]
    masks = predict_masks(seg, raws)
    for sid, mask in zip(sids, masks, strict=True):
        truth = read_mask(folder / "masks" / f"{sid}_mask.png")
        assert mask.shape == truth.shape == (64, 64) and mask.dtype == np.uint8
        assert int(mask.sum()) == pytest.approx(per_slice.at[sid, "pred_area"], abs=0.02 * 64 * 64)


def test_empty_predicted_mask_falls_back_to_the_whole_slice() -> None:
    image = np.random.default_rng(0).random((1, 40, 50)).astype(np.float32)
    mask = np.zeros((40, 50), np.uint8)
    whole, used_whole = classifier_input(image, mask, 1.5, 16)
    assert used_whole and whole.shape == (1, 16, 16)
    mask[10:14, 20:24] = 1
    crop, used_whole = classifier_input(image, mask, 1.5, 16)
    assert not used_whole and crop.shape == (1, 16, 16) and not np.allclose(crop, whole)


def test_runs_on_other_splits_are_refused(runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "cls"
    shutil.copytree(runs / "cls", other)
    splits = json.loads((other / "splits.json").read_text())
    splits["folds"][0]["test"], splits["folds"][0]["train"] = (
        splits["folds"][0]["train"],
        splits["folds"][0]["test"],
    )
    (other / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DataError, match="test patients differ"):
        evaluate_pipeline(runs / "seg", other, tmp_path / "pipe")


def test_wrong_models_are_refused(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds a segment model"):
        evaluate_pipeline(runs / "seg", runs / "seg", tmp_path / "pipe")
    whole = tmp_path / "whole"
    shutil.copytree(runs / "cls", whole)
    meta = json.loads((whole / "checkpoints" / "best.json").read_text())
    meta["preprocessing"]["roi_expansion"] = None
    (whole / "checkpoints" / "best.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="whole-slice classifier; the pipeline needs a ROI classifier"):
        evaluate_pipeline(runs / "seg", whole, tmp_path / "pipe")
    assert fold_runs(runs / "seg") == {0: runs / "seg"}


def test_out_of_fold_masks_cover_each_folds_test_patients(runs: Path, tmp_path: Path) -> None:
    from braintumor.experiments.segment import write_out_of_fold_masks

    n = write_out_of_fold_masks(runs / "seg", runs / "data", tmp_path / "masks")
    written = {p.name.removesuffix("_mask.png") for p in (tmp_path / "masks").glob("*_mask.png")}
    expected = set(pd.read_csv(runs / "seg" / "per_slice.csv")["sample_id"].astype(str))
    assert n == len(written) and written == expected


def test_cli_pipeline_prints_one_json_object(runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from braintumor.cli import app

    args = ["experiment", "pipeline", "--seg", str(runs / "seg"), "--cls", str(runs / "cls")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "pipe"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "pipeline" and summary["n_folds"] == 1
    assert 0.0 <= summary["mean"]["accuracy"] <= 1.0
    assert (tmp_path / "pipe" / "fold0" / "per_slice.csv").is_file()


def test_classifier_input_with_coords() -> None:
    image = np.random.default_rng(0).random((1, 40, 50)).astype(np.float32)
    mask = np.zeros((40, 50), np.uint8)
    whole, used_whole = classifier_input(image, mask, 1.5, 16, coords=True)
    assert (
        used_whole
        and whole.shape == (3, 16, 16)
        and np.array_equal(whole[:1], classifier_input(image, mask, 1.5, 16)[0])
    )
    mask[10:14, 20:24] = 1
    crop, _ = classifier_input(image, mask, 1.5, 16, coords=True)
    assert crop.shape == (3, 16, 16) and np.ptp(crop[1]) < np.ptp(whole[1])  # a smaller box: a flatter ramp


def test_pipeline_with_a_roi_coords_classifier(runs: Path, tmp_path: Path) -> None:
    cls = tmp_path / "cls-coords"
    cls.mkdir()
    shutil.copy(runs / "seg" / "splits.json", cls / "splits.json")
    extra = ["data.roi_coords=true", f"data.cache_dir={runs / 'cache'}", f"data.path={runs / 'data'}"]
    train_fold(load_config(None, [*TINY, *CLS, *extra]), cls, trainer_overrides=QUIET)
    assert TrainedModel.load(cls, "classify").meta["in_channels"] == 3
    evaluate_pipeline(runs / "seg", cls, tmp_path / "pipe")
    fold = json.loads((tmp_path / "pipe" / "fold0" / "metrics.json").read_text())
    own = json.loads((cls / "metrics.json").read_text())
    assert fold["accuracy_gt_crop"] == pytest.approx(own["accuracy"], abs=0.1)  # crops made as in training


def test_fusion_scores_cnn_forest_and_their_average(runs: Path, tmp_path: Path) -> None:
    from braintumor.experiments.fusion import fuse_run

    summary = fuse_run(runs / "cls", tmp_path / "fused", trees=20)
    fold = json.loads((tmp_path / "fused" / "fold0" / "metrics.json").read_text())
    own = json.loads((runs / "cls" / "metrics.json").read_text())
    assert fold["accuracy_cnn"] == pytest.approx(own["accuracy"])  # the run's own test predictions
    assert fold["n"] == own["n"]
    table = pd.read_csv(tmp_path / "fused" / "fold0" / "predictions.csv", dtype={"sample_id": str})
    cnn = pd.read_csv(runs / "cls" / "predictions.csv", dtype={"sample_id": str}).set_index("sample_id")
    assert sorted(table["sample_id"]) == sorted(cnn.index)  # exactly the CNN's unseen test slices
    probs = table[[c for c in table.columns if c.startswith("prob_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    classes = json.loads((runs / "cls" / "checkpoints" / "best.json").read_text())["classes"]
    assert list(table["pred_cnn"]) == [classes[int(i)] for i in cnn.loc[table["sample_id"], "pred"]]
    assert summary["mean"]["accuracy"] == pytest.approx(fold["accuracy"])
    # weight 1 is the CNN alone, weight 0 the forest alone
    only_cnn = fuse_run(runs / "cls", tmp_path / "cnn", weight=1.0, trees=20)
    assert only_cnn["mean"]["accuracy"] == pytest.approx(fold["accuracy_cnn"])
    only_forest = fuse_run(runs / "cls", tmp_path / "forest", weight=0.0, trees=20)
    assert only_forest["mean"]["accuracy"] == pytest.approx(fold["accuracy_forest"])
    with pytest.raises(ValueError, match="weight"):
        fuse_run(runs / "cls", tmp_path / "bad", weight=1.5)
    with pytest.raises(DataError, match="tumour-region"):
        fuse_run(runs / "seg", tmp_path / "bad")


def test_fuse_cli(runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from braintumor.cli import app

    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "fuse",
            "--cls",
            str(runs / "cls"),
            "--out",
            str(tmp_path / "f"),
            "--trees",
            "10",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["task"] == "fusion" and 0.0 <= summary["mean"]["accuracy"] <= 1.0
    (runs / "cls" / "predictions.csv").rename(tmp_path / "moved.csv")
    try:
        result = CliRunner().invoke(
            app, ["experiment", "fuse", "--cls", str(runs / "cls"), "--out", str(tmp_path / "g")]
        )
        assert result.exit_code != 0 and "predictions.csv" in result.output
    finally:
        (tmp_path / "moved.csv").rename(runs / "cls" / "predictions.csv")


def test_pipeline_fusion_matches_fuse_and_weight_one_is_the_cnn(runs: Path, tmp_path: Path) -> None:
    from braintumor.experiments.fusion import fuse_run

    fused = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe", fuse_weight=0.5)["folds"][0]
    on_truth = fuse_run(runs / "cls", tmp_path / "fused", weight=0.5)["folds"][0]
    assert fused["accuracy_gt_crop_fused"] == pytest.approx(on_truth["accuracy"])  # same forest, same masks
    assert (tmp_path / "pipe" / "fold0" / "confusion_fused.png").is_file()
    cnn_only = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe1", fuse_weight=1.0)["folds"][0]
    assert cnn_only["accuracy_fused"] == pytest.approx(cnn_only["accuracy"])
    assert cnn_only["accuracy_gt_crop_fused"] == pytest.approx(cnn_only["accuracy_gt_crop"])
