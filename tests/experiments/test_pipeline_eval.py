"""Segment -> crop -> classify evaluation through the shipped engine, on tiny phantoms (64 px, 1 epoch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from braintumor.bundle.create import from_run
from braintumor.bundle.store import BundleError
from braintumor.config import load_config
from braintumor.data.loaders import load_dataset
from braintumor.data.phantom import generate_phantoms
from braintumor.errors import DataError
from braintumor.evaluation import calls_report
from braintumor.experiments import pipeline_eval
from braintumor.experiments.pipeline_eval import evaluate_pipeline
from braintumor.experiments.segment import fold_runs
from braintumor.experiments.shipped import SCORING_PRECISION, held_out_inputs
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import make_backend
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.sources import Inputs
from braintumor.reports.collect import task_sections
from braintumor.training.runner import train_fold

QUIET = {"enable_progress_bar": False, "limit_train_batches": 2, "limit_val_batches": 1}
TINY = ["data.image_size=64", "data.folds=2", "data.normalization=percentile-image", "train.batch_size=8",
        "train.precision=32-true", "train.epochs=1", "data.val_fraction=0.2"]  # fmt: skip
SEG = ["model.name=unet", "model.kwargs={init_features: 4}"]
CLS = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "model.kwargs={channels: [4, 8]}",
       "data.roi_expansion=1.5"]  # fmt: skip
GATE = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "model.kwargs={channels: [4, 8]}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``seg``, ROI ``cls`` and whole-slice ``gate`` runs of fold 0 on one set of splits; phantoms in
    ``data``."""
    root = tmp_path_factory.mktemp("pipeline")
    generate_phantoms(root / "data", n_patients=8, slices_per_patient=4, size=64, seed=3)
    cache = f"data.cache_dir={root / 'cache'}"
    data = f"data.path={root / 'data'}"
    train_fold(load_config(None, [*TINY, *SEG, cache, data]), root / "seg", trainer_overrides=QUIET)
    for name, arm in (("cls", CLS), ("gate", GATE)):
        (root / name).mkdir()
        shutil.copy(root / "seg" / "splits.json", root / name / "splits.json")
        train_fold(load_config(None, [*TINY, *arm, cache, data]), root / name, trainer_overrides=QUIET)
    return root


def _test_patients(runs: Path) -> list[str]:
    return sorted(json.loads((runs / "seg" / "splits.json").read_text())["folds"][0]["test"])


def _own_tumour_accuracy(cls: Path) -> float:
    """The classifier's accuracy on its own test crops (``predictions.csv``), its no-tumour class
    left out as the shipped engine leaves it out of a tumour's class."""
    table = pd.read_csv(cls / "predictions.csv")
    classes = json.loads((cls / "checkpoints" / "best.json").read_text())["classes"]
    probs = table[[f"prob_{c}" for c in classes if c != "notumor"]]
    pred = probs.idxmax(axis=1).str.removeprefix("prob_")
    return float((pred == [classes[t] for t in table["target"]]).mean())


def test_pipeline_scores_the_folds_test_patients(runs: Path, tmp_path: Path) -> None:
    summary = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe")
    fold = json.loads((tmp_path / "pipe" / "fold0" / "metrics.json").read_text())
    assert summary["n_folds"] == 1 and summary["task"] == "pipeline" and fold["engine"] == "shipped"
    for key in ("dice_per_patient_mean", "dice_per_slice_mean", "accuracy", "macro_f1", "accuracy_gt_crop",
                "missed_fraction"):  # fmt: skip
        assert 0.0 <= fold[key] <= 1.0, key
        assert summary["mean"][key] == pytest.approx(fold[key])
    test = set(_test_patients(runs))
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv")
    assert set(per_slice["patient_id"]) == test and fold["n_patients"] == len(test)
    classified = per_slice.dropna(subset=["pred_pipeline"])
    assert len(classified) == fold["n_classified"] == (per_slice["true_area"] > 0).sum()
    missed = classified["call"] != "tumour"
    assert fold["n_missed"] == missed.sum() == (classified["pred_pipeline"] == "notumor").sum()
    assert fold["missed_fraction"] == pytest.approx(missed.mean())
    assert "gate_missed_fraction" not in fold and summary["mean"]["gate_missed_fraction"] is None
    assert fold["analysis"] == {**fold["analysis"], **from_run(runs / "seg").analysis, "tta_flips": ["none"]}
    # The ground-truth crops are the classifier's own test set: its accuracy is reproduced.
    assert fold["accuracy_gt_crop"] == pytest.approx(_own_tumour_accuracy(runs / "cls"), abs=0.1)
    assert fold["confusion_classes"] == ["glioma", "meningioma", "pituitary", "notumor"]
    per_class = next(s for s in task_sections(tmp_path / "pipe" / "fold0", fold) if s.title == "Per class")
    assert per_class.tables[-1].headers == ["true \\ predicted", *fold["confusion_classes"]]  # in the report
    assert (tmp_path / "pipe" / "cv_metrics.json").is_file() and (
        tmp_path / "pipe" / "fold0" / "confusion.png"
    ).is_file()


def test_pipeline_labels_and_masks_are_the_analyzers(runs: Path, tmp_path: Path) -> None:
    """The same files through :class:`Analyzer` with the same bundle give the same masks and classes."""
    evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe")
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv", dtype={"sample_id": str})
    per_slice = per_slice.set_index("sample_id")
    bundle = from_run(runs / "seg", runs / "cls")
    analyzer = Analyzer(bundle, make_backend(bundle, "torch", SCORING_PRECISION))
    index = load_dataset(runs / "data")
    items, rows = held_out_inputs(index, set(_test_patients(runs)), "patient_id")
    results = analyzer.analyze_files(Inputs(items))
    assert [r.kind for r in results] == ["volume"] * len(items)  # one volume per patient
    seen, voted_right = 0, []
    for result, rows_of in zip(results, rows, strict=True):
        for s, r in zip(result.slices, rows_of, strict=True):
            entry = per_slice.loc[str(index.frame.at[r, "sample_id"])]
            assert int(entry["pred_area"]) == (int(s.mask.sum()) if s.mask is not None else 0)
            if entry["true_area"] > 0:
                assert entry["pred_pipeline"] == (s.label if s.tumour else bundle.no_tumour_class)
                voted_right.append(s.tumour and result.label == entry["target"])  # the volume's class
                seen += 1
    assert seen == per_slice["pred_pipeline"].notna().sum() > 0
    fold = json.loads((tmp_path / "pipe" / "fold0" / "metrics.json").read_text())
    assert fold["accuracy_patient_vote"] == pytest.approx(np.mean(voted_right))


def test_calls_report_counts_a_missed_tumour_as_wrong() -> None:
    names = ["glioma", "pituitary", "notumor"]
    report = calls_report(["glioma", "glioma", "pituitary"], ["glioma", "notumor", "pituitary"], names)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)  # the miss lowers glioma's recall
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)  # over the tumour classes only
    assert report["confusion"] == [[1, 0, 1], [0, 1, 0], [0, 0, 0]] and set(report["per_class"]) == set(
        names[:2]
    )
    clean = calls_report(["glioma", "pituitary"], ["glioma", "glioma"], names)
    assert clean["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)  # scikit-learn's macro-F1 without misses
    with pytest.raises(ValueError, match="targets among"):
        calls_report(["notumor"], ["glioma"], names)


def test_missed_tumour_slices_count_as_wrong_and_as_missed(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline that calls every slice tumour-free (no mask is large enough) scores 0 and misses all."""
    monkeypatch.setattr(
        pipeline_eval, "_settings", lambda bundle, _: AnalysisSettings.for_bundle(bundle, min_area_px=10**9)
    )
    fold = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe")["folds"][0]
    assert fold["n_missed"] == fold["n_classified"] > 0 and fold["missed_fraction"] == 1.0
    assert fold["accuracy"] == fold["balanced_accuracy"] == fold["macro_f1"] == 0.0
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv")
    assert (per_slice["pred_area"] == 0).all()  # what ships: no tumour, an empty mask
    assert (per_slice.loc[per_slice["true_area"] > 0, "dice"] == 0).all()
    assert all(row[-1] == sum(row) for row in fold["confusion"])  # every slice in the no-tumour column
    # the ground-truth crops do not depend on the predicted masks
    plain = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "plain")["folds"][0]
    assert fold["accuracy_gt_crop"] == plain["accuracy_gt_crop"]


def test_a_gate_vetoes_slices_and_is_scored(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fold = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe", gate=runs / "gate")["folds"][0]
    assert fold["gate_run"] == str(runs / "gate") and 0.0 <= fold["gate_missed_fraction"] <= 1.0
    assert fold["n_gate_missed"] <= fold["n_missed"]
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv")
    assert fold["n_gate_missed"] == (per_slice["call"] == "no tumour: gate").sum()
    plain = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "plain")["folds"][0]
    assert fold["accuracy_gt_crop"] == plain["accuracy_gt_crop"]  # the gate never sees ground-truth crops
    assert fold["n_missed"] >= plain["n_missed"]  # a gate only removes tumours
    # a gate that vetoes every slice: every tumour slice it sees with a mask is missed because of it
    monkeypatch.setattr(
        pipeline_eval, "_settings", lambda bundle, _: AnalysisSettings.for_bundle(bundle, gate_threshold=1e-9)
    )
    vetoed = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "veto", gate=runs / "gate")["folds"][0]
    assert (
        vetoed["n_gate_missed"]
        == vetoed["n_missed"] - plain["n_missed"]
        == vetoed["n_classified"] - plain["n_missed"]
    )
    assert vetoed["gate_missed_fraction"] == pytest.approx(vetoed["n_gate_missed"] / vetoed["n_classified"])
    assert vetoed["accuracy_gt_crop"] == plain["accuracy_gt_crop"]


def test_runs_on_other_splits_are_refused(runs: Path, tmp_path: Path) -> None:
    for role in ("cls", "gate"):
        other = tmp_path / role
        shutil.copytree(runs / role, other)
        splits = json.loads((other / "splits.json").read_text())
        splits["folds"][0]["test"], splits["folds"][0]["train"] = (
            splits["folds"][0]["train"],
            splits["folds"][0]["test"],
        )
        (other / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DataError, match="test patients differ"):
        evaluate_pipeline(runs / "seg", tmp_path / "cls", tmp_path / "pipe")
    with pytest.raises(DataError, match=r"trained on .* test patient"):
        evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe", gate=tmp_path / "gate")


def test_wrong_models_are_refused(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="--cls must be a classifier"):
        evaluate_pipeline(runs / "seg", runs / "seg", tmp_path / "pipe")
    with pytest.raises(BundleError, match="whole-slice classifier"):
        evaluate_pipeline(runs / "seg", runs / "gate", tmp_path / "pipe")
    with pytest.raises(BundleError, match="the gate must classify whole slices"):
        evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe", gate=runs / "cls")
    assert fold_runs(runs / "seg") == {0: runs / "seg"}


def test_out_of_fold_masks_cover_each_folds_test_patients(runs: Path, tmp_path: Path) -> None:
    from PIL import Image

    from braintumor.experiments.segment import write_out_of_fold_masks

    n = write_out_of_fold_masks(runs / "seg", runs / "data", tmp_path / "masks")
    written = {p.name.removesuffix("_mask.png") for p in (tmp_path / "masks").glob("*_mask.png")}
    expected = set(pd.read_csv(runs / "seg" / "per_slice.csv")["sample_id"].astype(str))
    assert n == len(written) and written == expected
    # the masks the pipeline evaluation scores (as shipped), at the files' own size
    evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe")
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv", dtype={"sample_id": str})
    for sid, area in zip(per_slice["sample_id"], per_slice["pred_area"], strict=True):
        mask = np.asarray(Image.open(tmp_path / "masks" / f"{sid}_mask.png"))
        assert mask.shape == (64, 64) and int((mask > 0).sum()) == area
    with pytest.raises(BundleError, match="--seg must be a segmentation model"):
        write_out_of_fold_masks(runs / "cls", runs / "data", tmp_path / "bad")


def test_cli_pipeline_prints_one_json_object(runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from braintumor.cli import app

    args = ["experiment", "pipeline", "--seg", str(runs / "seg"), "--cls", str(runs / "cls")]
    result = CliRunner().invoke(
        app, [*args, "--gate", str(runs / "gate"), "--out", str(tmp_path / "pipe"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["task"] == "pipeline" and summary["n_folds"] == 1
    assert 0.0 <= summary["mean"]["accuracy"] <= 1.0 and summary["mean"]["gate_missed_fraction"] is not None
    assert (tmp_path / "pipe" / "fold0" / "per_slice.csv").is_file()
    result = CliRunner().invoke(app, [*args[:-1], str(runs / "seg"), "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "--cls must be a classifier" in result.output


def test_pipeline_with_a_roi_coords_classifier(runs: Path, tmp_path: Path) -> None:
    cls = tmp_path / "cls-coords"
    cls.mkdir()
    shutil.copy(runs / "seg" / "splits.json", cls / "splits.json")
    extra = ["data.roi_coords=true", f"data.cache_dir={runs / 'cache'}", f"data.path={runs / 'data'}"]
    train_fold(load_config(None, [*TINY, *CLS, *extra]), cls, trainer_overrides=QUIET)
    assert json.loads((cls / "checkpoints" / "best.json").read_text())["in_channels"] == 3
    evaluate_pipeline(runs / "seg", cls, tmp_path / "pipe")
    fold = json.loads((tmp_path / "pipe" / "fold0" / "metrics.json").read_text())
    # crops made as in training
    assert fold["accuracy_gt_crop"] == pytest.approx(_own_tumour_accuracy(cls), abs=0.1)


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
    # every test slice takes its patient's mean probabilities (the fused ones in the table)
    mean = table.groupby("patient_id")[[f"prob_{c}" for c in classes]].transform("mean").to_numpy()
    consensus = np.array(classes)[mean.argmax(axis=1)] == table["target"].to_numpy()
    assert table.groupby("patient_id").size().max() > 1
    assert fold["accuracy_patient_vote"] == pytest.approx(consensus.mean())
    assert summary["mean"]["accuracy_per_patient"] == pytest.approx(fold["accuracy_per_patient"])
    # weight 1 is the CNN alone, weight 0 the forest alone
    only_cnn = fuse_run(runs / "cls", tmp_path / "cnn", weight=1.0, trees=20)
    assert only_cnn["mean"]["accuracy"] == pytest.approx(fold["accuracy_cnn"])
    assert only_cnn["mean"]["accuracy_patient_vote"] == pytest.approx(fold["accuracy_patient_vote_cnn"])
    only_forest = fuse_run(runs / "cls", tmp_path / "forest", weight=0.0, trees=20)
    assert only_forest["mean"]["accuracy"] == pytest.approx(fold["accuracy_forest"])
    with pytest.raises(ValueError, match="weight"):
        fuse_run(runs / "cls", tmp_path / "bad", weight=1.5)
    with pytest.raises(DataError, match="tumour-region"):
        fuse_run(runs / "seg", tmp_path / "bad")


def test_fusion_averages_several_cnn_runs_of_one_split(runs: Path, tmp_path: Path) -> None:
    from braintumor.experiments.fusion import fuse_run

    other = tmp_path / "cls-other"  # a second CNN on the same patients, sure of the first class
    shutil.copytree(runs / "cls", other)
    table = pd.read_csv(other / "predictions.csv", dtype={"sample_id": str})
    prob_columns = [c for c in table.columns if c.startswith("prob_")]
    table[prob_columns] = np.eye(len(prob_columns))[0]
    table.to_csv(other / "predictions.csv", index=False)
    both = fuse_run([runs / "cls", other], tmp_path / "both", weight=1.0, trees=20)["folds"][0]
    own = pd.read_csv(runs / "cls" / "predictions.csv", dtype={"sample_id": str})
    mean = (own[prob_columns].to_numpy() + table[prob_columns].to_numpy()) / 2
    right = mean.argmax(1) == own["target"].to_numpy()
    assert both["accuracy_cnn"] == pytest.approx(right.mean()) and both["accuracy"] == both["accuracy_cnn"]
    splits = json.loads((other / "splits.json").read_text())
    fold = splits["folds"][0]
    fold["val"].append(fold["train"].pop())  # the second CNN chose its checkpoint on other patients
    (other / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DataError, match="train/val patients differ"):
        fuse_run([runs / "cls", other], tmp_path / "bad")


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


def test_pipeline_fusion_is_the_bundles_and_weight_one_is_the_cnn(runs: Path, tmp_path: Path) -> None:
    from braintumor.experiments.fusion import fuse_run

    plain = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "plain")["folds"][0]
    fused = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe", fuse_weight=0.5)["folds"][0]
    on_truth = fuse_run(runs / "cls", tmp_path / "fused", weight=0.5)["folds"][0]
    assert fused["accuracy_gt_crop_fused"] == pytest.approx(on_truth["accuracy"])  # same forest, same masks
    assert (tmp_path / "pipe" / "fold0" / "confusion_fused.png").is_file()
    # the plain figures are the classifier's own probabilities inside the fused bundle
    for key in ("accuracy", "macro_f1", "accuracy_gt_crop", "n_missed"):
        assert fused[key] == plain[key], key
    # the fused figures are the labels of the bundle `bundle create --fuse-forest` makes
    bundle = from_run(runs / "seg", runs / "cls", fuse_forest=True, fuse_weight=0.5, forest_trees=1000)
    analyzer = Analyzer(bundle, make_backend(bundle, "torch", SCORING_PRECISION))
    index = load_dataset(runs / "data")
    items, rows = held_out_inputs(index, set(_test_patients(runs)), "patient_id")
    per_slice = pd.read_csv(tmp_path / "pipe" / "fold0" / "per_slice.csv", dtype={"sample_id": str})
    per_slice = per_slice.dropna(subset=["pred_pipeline"]).set_index("sample_id")
    for result, rows_of in zip(analyzer.analyze_files(Inputs(items)), rows, strict=True):
        for s, r in zip(result.slices, rows_of, strict=True):
            sid = str(index.frame.at[r, "sample_id"])
            if sid in per_slice.index:
                assert per_slice.at[sid, "pred_pipeline_fused"] == (s.label if s.tumour else "notumor")
    cnn_only = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "pipe1", fuse_weight=1.0)["folds"][0]
    assert cnn_only["accuracy_fused"] == pytest.approx(cnn_only["accuracy"])
    assert cnn_only["accuracy_gt_crop_fused"] == pytest.approx(cnn_only["accuracy_gt_crop"])


def test_an_ensemble_of_one_classifier_twice_scores_as_the_classifier(runs: Path, tmp_path: Path) -> None:
    """Averaging identical members changes nothing: the ensemble path reproduces the single run."""
    single = evaluate_pipeline(runs / "seg", runs / "cls", tmp_path / "one")["folds"][0]
    double = evaluate_pipeline(runs / "seg", [runs / "cls", runs / "cls"], tmp_path / "two")["folds"][0]
    for key in ("accuracy", "accuracy_gt_crop", "macro_f1", "dice_per_slice_mean", "n_classified"):
        assert double[key] == pytest.approx(single[key]), key
    assert double["cls_run"] == f"{runs / 'cls'}, {runs / 'cls'}"
    one = pd.read_csv(tmp_path / "one" / "fold0" / "per_slice.csv")
    two = pd.read_csv(tmp_path / "two" / "fold0" / "per_slice.csv")
    pd.testing.assert_series_equal(one["pred_gt_crop"], two["pred_gt_crop"])


def test_a_sweep_folder_is_the_ensemble_of_its_arms_the_chosen_factor_first(
    runs: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    for label in ("1.5", "3.0"):
        arm = Path(shutil.copytree(runs / "cls", sweep / f"roi-{label}"))
        card = json.loads((arm / "checkpoints" / "best.json").read_text())
        card["preprocessing"]["roi_expansion"] = float(label)
        (arm / "checkpoints" / "best.json").write_text(json.dumps(card))
    rows = [{"factor": "1.5"}, {"factor": "3.0"}]
    (sweep / "sweep.json").write_text(json.dumps({"rows": rows, "best_factor": "3.0"}))
    fold = evaluate_pipeline(runs / "seg", sweep, tmp_path / "pipe")["folds"][0]
    assert fold["cls_run"] == f"{sweep / 'roi-3.0'}, {sweep / 'roi-1.5'}" and fold["roi_expansion"] == 3.0
    (sweep / "sweep.json").write_text(
        json.dumps({"rows": [*rows, {"factor": "whole"}], "best_factor": "3.0"})
    )
    with pytest.raises(DataError, match=r"sweep arms \['roi-whole'\] are missing"):
        evaluate_pipeline(runs / "seg", sweep, tmp_path / "pipe2")
