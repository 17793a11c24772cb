"""Classification extras on tiny data: ROI-factor sweep, misclassified sheet, near-duplicate-aware
accuracy on a predefined Training/Testing split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import braintumor.cli.experiments  # noqa: F401  (registers compare / sweep-roi)
from braintumor.cli import app
from braintumor.config import load_config
from braintumor.data.cache import ArrayStore
from braintumor.data.roi import WHOLE_IMAGE_EXPANSION, crop_roi
from braintumor.errors import ConfigError
from braintumor.reports.compare import compare_runs
from braintumor.training.cv import cross_validate
from braintumor.training.data import FoldData
from braintumor.training.figures import misclassified_figure, pick_misclassified
from braintumor.training.runner import train_fold
from braintumor.training.sweep import best_factor, parse_factors

QUIET = {"enable_progress_bar": False}
TINY = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
]  # fmt: skip
CLASSIFY = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "train.epochs=1"]


def _last_json(stdout: str) -> dict:  # type: ignore[type-arg]
    return json.loads(stdout.strip().splitlines()[-1])


def test_parse_factors_and_best_factor() -> None:
    assert parse_factors("1.0, 1.5,whole") == [1.0, 1.5, "whole"]
    for bad in ("0.5", "x", "1.0,1"):
        with pytest.raises(ConfigError):
            parse_factors(bad)
    rows: list[dict[str, Any]] = [
        {"factor": "1.0", "val_accuracy_mean": 0.7, "accuracy_mean": 0.9},
        {"factor": "2.0", "val_accuracy_mean": 0.8, "accuracy_mean": 0.8},
        {"factor": "3.0", "val_accuracy_mean": 0.8, "accuracy_mean": 0.85},
        {"factor": "whole", "val_accuracy_mean": None, "accuracy_mean": None},
    ]
    assert best_factor(rows) == "2.0"  # chosen on validation, never on test; ties: listed first
    assert best_factor(rows, "accuracy_mean") == "1.0"
    assert best_factor([{"factor": "1.0", "val_accuracy_mean": None}]) is None


def test_whole_image_factor_equals_whole_slice() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((1, 40, 52), dtype=np.float32)
    mask = np.zeros((40, 52), np.uint8)
    mask[0, 51] = 1  # one-pixel tumour in a corner: the hardest case for the box to cover the image
    from braintumor.data.preprocess import resize_square

    whole_image, whole_mask = resize_square(image, 32, mask)
    crop_image, crop_mask = crop_roi(image, mask, WHOLE_IMAGE_EXPANSION, 32)
    np.testing.assert_array_equal(crop_image, whole_image)
    np.testing.assert_array_equal(crop_mask, whole_mask)


def test_sweep_roi_cli_shares_splits(tmp_path: Path) -> None:
    run = tmp_path / "sweep"
    sets = [a for s in [*TINY, *CLASSIFY] for a in ("--set", s)]
    result = CliRunner().invoke(
        app, ["sweep-roi", "--out", str(run), "--factors", "1.5,whole", "--folds", "2", *sets, "--json"]
    )
    assert result.exit_code == 0, result.output
    sweep = _last_json(result.stdout)
    assert [r["factor"] for r in sweep["rows"]] == ["1.5", "whole"]
    # the factor is chosen on the folds' validation accuracy (each best checkpoint's score)
    for row in sweep["rows"]:
        scores = [
            json.loads((run / f"roi-{row['factor']}" / f"fold{k}" / "checkpoints" / "best.json").read_text())
            for k in (0, 1)
        ]
        assert all(s["monitor"] == "val_accuracy" for s in scores)
        assert row["val_accuracy_mean"] == pytest.approx(np.mean([s["best_score"] for s in scores]))
    assert sweep["best_factor"] == best_factor(sweep["rows"]) and sweep["metric"] == "val_accuracy"
    assert sweep["best_on_test"] == best_factor(sweep["rows"], "accuracy_mean")
    assert json.loads((run / "sweep.json").read_text())["best_factor"] == sweep["best_factor"]
    assert (run / "sweep.png").is_file() and len(pd.read_csv(run / "sweep.csv")) == 2
    # both arms score the same (tumour) samples on one set of patient-level splits
    n = {r["factor"]: r["n_samples"] for r in sweep["rows"]}
    assert n["1.5"] == n["whole"] > 0
    shared = json.loads((run / "splits.json").read_text())
    assert shared["unit"] == "patient" and len(shared["folds"]) == 2
    for arm in ("roi-1.5", "roi-whole"):
        for name in ("splits.json", "fold0/splits.json", "fold1/splits.json"):
            assert json.loads((run / arm / name).read_text()) == shared, f"{arm}/{name}"
        predictions = pd.read_csv(run / arm / "fold0" / "predictions.csv")
        wrong = bool((predictions["target"] != predictions["pred"]).any())
        # every slice takes its patient's mean probabilities (one tumour per patient)
        probs = predictions.groupby("patient_id")[[c for c in predictions if c.startswith("prob_")]]
        voted = probs.transform("mean").to_numpy().argmax(axis=1) == predictions["target"].to_numpy()
        fold0 = json.loads((run / arm / "fold0" / "metrics.json").read_text())
        assert fold0["accuracy_patient_vote"] == pytest.approx(voted.mean())
        assert 0.0 <= fold0["accuracy_per_patient"] <= 1.0
        assert (run / arm / "fold0" / "misclassified.png").is_file() == wrong
    rows = compare_runs([run])  # a sweep folder expands to its CV runs
    assert [r["run"] for r in rows] == ["sweep/roi-1.5", "sweep/roi-whole"]
    assert all(r["kind"] == "cv" and r["n_folds"] == 2 and r["parameters"] > 0 for r in rows)
    assert rows[0]["roi_expansion"] == 1.5 and rows[1]["roi_expansion"] == WHOLE_IMAGE_EXPANSION


def test_misclassified_sheet(tmp_path: Path) -> None:
    ids = [f"s{i}" for i in range(20)]
    store = ArrayStore(tmp_path, np.random.default_rng(0).random((20, 1, 16, 16)).astype(np.float16), None,
                       np.zeros(20, np.int64), ids, ids, np.arange(20), {})  # fmt: skip
    fold = FoldData(None, store, None, 0, None, None, None)  # type: ignore[arg-type]  # only .store is read
    target = np.zeros(20, int)
    pred = np.where(np.arange(20) < 18, 1, 0)  # 18 wrong, 2 right
    frame = pd.DataFrame({"sample_id": ids, "target": target, "pred": pred,
                          "confidence": np.linspace(0.5, 0.99, 20)})  # fmt: skip
    picks = pick_misclassified(frame)
    assert len(picks) == 16 and picks["confidence"].is_monotonic_decreasing
    assert set(picks["sample_id"]).isdisjoint({"s18", "s19"})  # right answers never shown
    path = tmp_path / "misclassified.png"
    assert misclassified_figure(frame, ["a", "b"], fold, path) == path and path.is_file()
    assert misclassified_figure(frame.assign(pred=0), ["a", "b"], fold, path) is None
    assert not path.exists()  # nothing wrong: a stale sheet is removed


def _class_folders(root: Path) -> Path:
    """Training/Testing class folders of smooth random images; Testing/b/dup.png copies a training image."""
    rng = np.random.default_rng(1)

    def save(path: Path) -> None:
        low = rng.random((6, 6))
        image = Image.fromarray((low * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)

    for split, n in (("Training", 10), ("Testing", 3)):
        for cls in ("a", "b"):
            for i in range(n):
                save(root / split / cls / f"{cls}{i}.png")
    (root / "Testing" / "b" / "dup.png").write_bytes((root / "Training" / "b" / "b0.png").read_bytes())
    return root


def test_duplicate_aware_accuracy_on_predefined_split(tmp_path: Path) -> None:
    data = _class_folders(tmp_path / "data")
    cfg = load_config(None, [*TINY, *CLASSIFY, f"data.path={data}"])
    metrics = train_fold(cfg, tmp_path / "run", trainer_overrides=QUIET)
    assert json.loads((tmp_path / "run" / "splits.json").read_text())["method"] == "predefined"
    dups = metrics["near_duplicates"]
    assert dups["n_test_with_duplicate"] >= 1 and dups["threshold"] == 0.9 and dups["n_test"] == 7
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    clean = predictions[predictions["sample_id"] != "Testing/b/dup"]
    if dups["n_test_with_duplicate"] == 1:
        assert metrics["accuracy_without_duplicates"] == pytest.approx(clean["correct"].mean())
    assert metrics["n_without_duplicates"] == 7 - dups["n_test_with_duplicate"]
    pairs = pd.read_csv(tmp_path / "run" / "near_duplicates.csv")
    assert {"test": "Testing/b/dup", "train": "Training/b/b0"}.items() <= pairs.iloc[0].to_dict().items()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["accuracy_without_duplicates"] == metrics["accuracy_without_duplicates"]
    # the split is one fold: cross-validating it is refused before fold 1 trains, not run as fold 0 again
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "splits.json").write_text((tmp_path / "run" / "splits.json").read_text())
    with pytest.raises(ConfigError, match=r"data\.fold=1 does not exist.*one fold"):
        cross_validate(cfg, tmp_path / "cv", folds=[1])
    assert not (tmp_path / "cv" / "fold1").exists()


def test_copies_of_another_dataset_are_dropped_before_splitting_and_recorded(tmp_path: Path) -> None:
    data = _class_folders(tmp_path / "data")
    reference = tmp_path / "reference" / "x"
    reference.mkdir(parents=True)
    for name in ("a/a1.png", "b/b2.png"):  # mirrored copies of two training images
        image = Image.open(data / "Training" / name)
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(reference / name.replace("/", "_"))
    cfg = load_config(
        None, [*TINY, *CLASSIFY, f"data.path={data}", f"data.exclude_copies_of={reference.parent}"]
    )
    train_fold(cfg, tmp_path / "run", trainer_overrides=QUIET)
    record = json.loads((tmp_path / "run" / "excluded_copies.json").read_text())
    assert {d["sample_id"] for d in record["dropped"]} == {"Training/a/a1", "Training/b/b2"}
    assert record["n_before"] == 27 and all(d["kind"] == "mirror" for d in record["dropped"])
    parts = json.loads((tmp_path / "run" / "splits.json").read_text())["folds"][0]
    assert not {"Training/a/a1", "Training/b/b2"} & {g for ids in parts.values() for g in ids}


def test_copies_of_one_reference_fold_keep_the_other_folds_copies(tmp_path: Path) -> None:
    from braintumor.config import DataConfig
    from braintumor.data.loaders import load_dataset
    from braintumor.training.data import without_copies

    reference = _class_folders(tmp_path / "reference")  # its one fold tests the Testing images
    query = tmp_path / "query" / "x"
    query.mkdir(parents=True)
    for name in ("Training/a/a0", "Training/a/a1", "Testing/a/a0"):
        image = Image.open(reference / f"{name}.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image.save(query / f"{name.replace('/', '_')}.png")
    index = load_dataset(query.parent)

    def dropped(fold: int, run: Path) -> tuple[set[str], dict[str, Any]]:
        cfg = DataConfig(path=str(query.parent), exclude_copies_of=str(reference), exclude_copies_fold=fold)
        kept = without_copies(index, cfg, run)
        record = json.loads((run / "excluded_copies.json").read_text())
        assert len(kept) == len(index) - record["n_dropped"]
        return {d["copy_of"] for d in record["dropped"]}, record

    copied, record = dropped(0, tmp_path / "fold0")
    assert copied == {"Testing/a/a0"}  # the copies of training images stay
    assert record["reference_fold"] == 0 and record["reference_split"] == "predefined"
    assert "Testing/a/a0" in record["reference_test_groups"]
    copied, record = dropped(-1, tmp_path / "all")
    assert copied == {"Training/a/a0", "Training/a/a1", "Testing/a/a0"} and record["reference_fold"] is None
    with pytest.raises(ConfigError, match=r"exclude_copies_fold needs data\.exclude_copies_of"):
        DataConfig(exclude_copies_fold=0)
    with pytest.raises(ConfigError, match="exclude_copies_fold=-2"):
        DataConfig(exclude_copies_of=str(reference), exclude_copies_fold=-2)


def test_external_classification_maps_labels_by_class_name(tmp_path: Path) -> None:
    from braintumor.data.phantom import generate_phantoms
    from braintumor.errors import DataError
    from braintumor.training.evaluate import evaluate_run, label_map

    run = tmp_path / "run"
    train_fold(load_config(None, [*TINY, *CLASSIFY]), run, trainer_overrides=QUIET)
    model_classes = json.loads((run / "checkpoints" / "best.json").read_text())["classes"]
    assert model_classes == ["glioma", "meningioma", "notumor", "pituitary"]
    # other data ordering its classes differently: its label 0 is pituitary, the model's 3
    other = tmp_path / "other"
    classes = ["pituitary", "glioma"]
    generate_phantoms(other, n_patients=4, slices_per_patient=2, size=32, seed=7, classes=classes)
    frame = pd.read_csv(other / "index.csv", dtype={"split": str}, keep_default_na=False)
    frame.assign(patient_id="ext-" + frame["patient_id"]).to_csv(other / "index.csv", index=False)
    metrics = evaluate_run(run, other, out_dir=tmp_path / "eval")
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv").set_index("sample_id")
    truth = frame.set_index("sample_id")["label"]
    assert [model_classes[t] for t in predictions.loc[truth.index, "target"]] == truth.tolist()
    assert metrics["external"] and metrics["n"] == len(frame)
    with pytest.raises(DataError, match=r"\['tumour'\] are not classes of the model"):
        label_map(["glioma", "tumour"], model_classes, other)


def test_external_evaluation_leaves_out_copies_of_the_training_images(tmp_path: Path) -> None:
    from braintumor.training.evaluate import evaluate_run

    data = _class_folders(tmp_path / "data")
    cfg = load_config(None, [*TINY, *CLASSIFY, f"data.path={data}"])
    train_fold(cfg, tmp_path / "run", trainer_overrides=QUIET)
    other = _class_folders(tmp_path / "other-source") / "Testing"  # the run's unseen Testing images
    (other / "b" / "dup.png").unlink()
    mirrored = Image.open(data / "Training" / "a" / "a2.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mirrored.save(other / "a" / "copy-of-a2.png")
    metrics = evaluate_run(tmp_path / "run", other, out_dir=tmp_path / "eval")
    assert metrics["excluded_copies"] == 1 and metrics["n"] == 6
    copies = pd.read_csv(tmp_path / "eval" / "excluded_copies.csv")
    assert copies[["sample_id", "copy_of", "kind"]].values.tolist() == [
        ["a/copy-of-a2", "Training/a/a2", "mirror"]
    ]
    assert "a/copy-of-a2" not in set(pd.read_csv(tmp_path / "eval" / "predictions.csv")["sample_id"])


def test_frozen_backbone_phase_survives_a_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    freeze = ["train.freeze_epochs=1", "train.scheduler=none", "train.lr=0.001"]
    freeze.append("train.unfreeze_lr_factor=0.1")
    train_fold(load_config(None, [*TINY, *CLASSIFY, *freeze]), run, trainer_overrides=QUIET)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["backbone_frozen"]
    # stopped after the frozen epoch, resumed: the unfreeze still lowers the learning rate
    train_fold(load_config(None, [*TINY, *CLASSIFY, *freeze, "train.epochs=2"]), run, trainer_overrides=QUIET)
    assert pd.read_csv(run / "history.csv")["lr"].tolist() == pytest.approx([0.001, 0.0001])
    assert not torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["backbone_frozen"]
