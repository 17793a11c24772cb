"""Training engine on tiny phantoms: train -> evaluate -> predict, resume, CV, classification."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.config import ExperimentConfig, load_config
from braintumor.models.weights import load_weights
from braintumor.runtime.precision import training_precision
from braintumor.training.cv import cross_validate, fold_config
from braintumor.training.runner import train_fold

QUIET = {"enable_progress_bar": False}
TINY = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
]  # fmt: skip


SEG = ["model.name=unet", "model.kwargs={init_features: 4}", "train.epochs=1"]
RUN_FILES = (
    "config.yaml", "splits.json", "history.csv", "metrics.json", "per_patient.csv", "per_slice.csv",
    "checkpoints/best.safetensors", "checkpoints/best.json", "checkpoints/last.ckpt", "curves.png",
)  # fmt: skip


def seg_config(*extra: str) -> ExperimentConfig:
    return load_config(None, [*TINY, *SEG, *extra])


def test_segmentation_run_folder(tmp_path: Path) -> None:
    metrics = train_fold(seg_config(), tmp_path / "run", trainer_overrides=QUIET)
    run = tmp_path / "run"
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert 0.0 <= metrics["dice_per_patient_mean"] <= 1.0 and metrics["n_patients"] >= 1
    state, meta = load_weights(run / "checkpoints" / "best.safetensors")
    assert meta["task"] == "segment" and meta["preprocessing"]["image_size"] == 32
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    splits = json.loads((run / "splits.json").read_text())
    fold = splits["folds"][0]
    assert not set(fold["train"]) & set(fold["test"]) and not set(fold["val"]) & set(fold["test"])


def test_a_run_records_the_precision_auto_chose(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_fold(seg_config("train.precision=auto"), run, trainer_overrides=QUIET)
    assert load_config(run / "config.yaml").train.precision == training_precision("auto") != "auto"


def test_resume_continues_from_last_checkpoint(tmp_path: Path) -> None:
    from braintumor.errors import ConfigError

    run = tmp_path / "run"
    train_fold(seg_config("train.scheduler=none"), run, trainer_overrides=QUIET)
    first = json.loads((run / "metrics.json").read_text())
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.001 -> 0\.01.*--no-resume"):
        train_fold(seg_config("train.scheduler=none", "train.lr=0.01"), run, trainer_overrides=QUIET)
    with pytest.raises(ConfigError, match=r"train\.epochs: 1 -> 2, train\.scheduler: 'none' -> 'cosine'"):
        train_fold(seg_config("train.epochs=2"), run, trainer_overrides=QUIET)  # cosine: laid out for 1
    # more epochs under a constant rate, a new time budget: allowed
    extended = seg_config("train.scheduler=none", "train.epochs=2", "train.max_minutes=30")
    metrics = train_fold(extended, run, trainer_overrides=QUIET)
    history = (run / "history.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1"]  # epoch 0 kept, only epoch 1 trained
    assert metrics["epochs"] == 2 and first["epochs"] == 1


def test_a_moved_run_folder_resumes_with_its_best_checkpoint(tmp_path: Path) -> None:
    import shutil
    import warnings

    train_fold(seg_config("train.scheduler=none"), tmp_path / "run", trainer_overrides=QUIET)
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.move(tmp_path / "run", moved)  # e.g. trained on another machine, resumed here
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*dirpath has changed.*")
        train_fold(seg_config("train.scheduler=none", "train.epochs=2"), moved, trainer_overrides=QUIET)
    best = json.loads((moved / "checkpoints" / "best.json").read_text())
    assert best["best_score"] == pytest.approx(pd.read_csv(moved / "history.csv")["val_dice"].max())


def test_a_run_stopped_by_its_budget_stays_stopped_when_rerun(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from braintumor.training.callbacks import ResumableEarlyStopping, TimeBudget

    run = tmp_path / "run"
    budget = seg_config("train.epochs=3", "train.max_minutes=0.00001")  # spent within epoch 0
    assert train_fold(budget, run, trainer_overrides=QUIET)["epochs"] == 1
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    assert state["TimeBudget"]["seconds_spent"] > 0.0006
    metrics = train_fold(budget, run, trainer_overrides=QUIET)  # rerun: no new training time
    assert metrics["epochs"] == 1 and len(pd.read_csv(run / "history.csv")) == 1
    # the budget counts every session; a larger one lets the run go on
    trainer = SimpleNamespace(should_stop=False, sanity_checking=False, current_epoch=1)
    timer = TimeBudget(1.0)
    timer.load_state_dict({"seconds_spent": 59.0})
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    assert not trainer.should_stop
    timer.load_state_dict({"seconds_spent": 61.0})
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    assert trainer.should_stop
    stopper, trainer.should_stop = ResumableEarlyStopping("val_dice", mode="max", patience=2), False
    stopper.wait_count = 2  # as restored from the checkpoint of a run it stopped
    stopper.on_train_start(trainer, None)  # type: ignore[arg-type]
    assert trainer.should_stop


def test_cli_train_evaluate_predict(tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    sets = [a for s in [*TINY, "model.kwargs={init_features: 4}", "train.epochs=1"] for a in ("--set", s)]
    result = runner.invoke(app, ["train", "segment", "--out", str(run), *sets, "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout.strip().splitlines()[-1])
    assert evaluated["dice_per_patient_mean"] == pytest.approx(trained["dice_per_patient_mean"], abs=0.02)
    patient_scope = ["--postprocess", "--postprocess-scope", "patient", "--json"]
    result = runner.invoke(app, ["evaluate", str(run), *patient_scope, "--out", str(tmp_path / "pp3d")])
    assert result.exit_code == 0, result.output
    cleaned = json.loads(result.stdout.strip().splitlines()[-1])
    assert cleaned["evaluation"]["postprocess_scope"] == "patient"
    assert cleaned["evaluation"]["largest_component"]
    assert (tmp_path / "pp3d" / "per_patient.csv").is_file()
    kept = ["--set", "eval.postprocess_scope=patient", "--set", "eval.largest_component=true", "--json"]
    result = runner.invoke(app, ["evaluate", str(run), *kept, "--out", str(tmp_path / "own-scope")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["evaluation"]["postprocess_scope"] == "patient"
    # --no-postprocess / --no-tta turn off what the run's settings turn on (they used to be ignored)
    own = ["--set", "eval.largest_component=true", "--set", "eval.fill_holes=true", "--set", "eval.tta=true"]
    result = runner.invoke(app, ["evaluate", str(run), *own, "--no-postprocess", "--no-tta", "--json",
                                 "--out", str(tmp_path / "raw")])  # fmt: skip
    assert result.exit_code == 0, result.output
    raw = json.loads(result.stdout.strip().splitlines()[-1])["evaluation"]
    assert not (raw["largest_component"] or raw["fill_holes"] or raw["tta"])
    result = runner.invoke(app, ["evaluate", str(run), "--postprocess-scope", "volume"])
    assert result.exit_code != 0 and "postprocess_scope" in result.output
    result = runner.invoke(app, ["evaluate", str(run), "--tune", "--json", "--out", str(tmp_path / "tuned")])
    assert result.exit_code == 0, result.output
    tuned = json.loads(result.stdout.strip().splitlines()[-1])
    table = pd.read_csv(tmp_path / "tuned" / "tuning.csv")
    assert len(table) == tuned["tuning"]["n_candidates"] == 48
    val_patients = json.loads((run / "splits.json").read_text())["folds"][0]["val"]
    assert tuned["tuning"]["n_val_patients"] == len(val_patients)  # tuned on validation, not test, patients
    best = table["val_dice_per_patient"].max()
    assert tuned["tuning"]["val_dice_per_patient"] == pytest.approx(best)
    chosen = tuned["tuning"]["chosen"]
    assert tuned["evaluation"] == chosen  # the test patients are scored with the chosen settings
    first_best = table[table["val_dice_per_patient"] == best].iloc[0]
    assert (chosen["threshold"], chosen["tta"]) == (first_best["threshold"], bool(first_best["tta"]))
    result = runner.invoke(app, ["evaluate", str(run), "--set", "eval.threshold=1.0"])
    assert result.exit_code != 0 and "eval.threshold" in result.output
    image = tmp_path / "slice.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(image)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = runner.invoke(app, ["predict", str(run), str(image), str(tmp_path / "broken.png"),
                                 "--out", str(tmp_path / "pred"), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    good, bad = json.loads(result.stdout.strip().splitlines()[-1])["results"]
    assert good["ok"] and Image.open(good["outputs"]["mask"]).size == (50, 40)
    assert not bad["ok"] and "broken.png" in bad["error"]
    assert (tmp_path / "pred" / "predictions.csv").is_file()
    twin = tmp_path / "other" / "slice.png"  # the same file name in another folder
    twin.parent.mkdir()
    twin.write_bytes(image.read_bytes())
    result = runner.invoke(app, ["predict", str(run), str(image), str(twin), "--out", str(tmp_path / "twins"),
                                 "--json"])  # fmt: skip
    first, second = json.loads(result.stdout.strip().splitlines()[-1])["results"]
    assert first["outputs"]["mask"] != second["outputs"]["mask"]  # neither overwrites the other
    assert Path(second["outputs"]["mask"]).name == "slice_2_mask.png"


def test_each_fold_can_start_from_its_own_weights() -> None:
    cfg = load_config(None, ["model.init_from=runs/gates/fold{fold}/checkpoints/best.safetensors"])
    fold3 = fold_config(cfg, 3)
    assert fold3.data.fold == 3 and fold3.model.init_from == "runs/gates/fold3/checkpoints/best.safetensors"
    plain = load_config(None, ["model.init_from=kaggle/best.safetensors"])
    assert fold_config(plain, 2).model.init_from == "kaggle/best.safetensors"


def test_classification_and_cv(tmp_path: Path) -> None:
    cls = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "train.epochs=1"]
    cfg = load_config(None, [*TINY, *cls])
    summary = cross_validate(cfg, tmp_path / "cv", folds=[0, 1], trainer_overrides=QUIET)
    assert summary["n_folds"] == 2 and 0 <= summary["mean"]["accuracy"] <= 1
    assert (tmp_path / "cv" / "fold1" / "confusion.png").is_file()
    assert (tmp_path / "cv" / "cv_folds.csv").is_file()
    s0 = json.loads((tmp_path / "cv" / "fold0" / "splits.json").read_text())
    s1 = json.loads((tmp_path / "cv" / "fold1" / "splits.json").read_text())
    assert s0 == s1  # one set of splits shared by every fold


def test_cv_aggregates_folds_trained_in_separate_calls(tmp_path: Path) -> None:
    """Folds run one at a time (``--only k``, as parallel processes on one GPU) add up to one CV."""
    cls = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "train.epochs=1"]
    cfg = load_config(None, [*TINY, *cls])
    first = cross_validate(cfg, tmp_path / "cv", folds=[1], trainer_overrides=QUIET)
    assert first["n_folds"] == 1 and [f["fold"] for f in first["folds"]] == [1]
    summary = cross_validate(cfg, tmp_path / "cv", folds=[0], trainer_overrides=QUIET)
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    accuracies = [f["accuracy"] for f in summary["folds"]]
    assert summary["mean"]["accuracy"] == pytest.approx(sum(accuracies) / 2)
    assert json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())["n_folds"] == 2


def test_init_from_project_checkpoint_skips_new_head(tmp_path: Path) -> None:
    from braintumor.config import ModelConfig
    from braintumor.models.network import build_network
    from braintumor.models.weights import load_weights

    cls = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "train.epochs=1"]
    train_fold(load_config(None, [*TINY, *cls]), tmp_path / "src", trainer_overrides=QUIET)
    weights = tmp_path / "src" / "checkpoints" / "best.safetensors"
    source, _ = load_weights(weights)
    net = build_network(ModelConfig("cnn-small", init_from=str(weights)), in_channels=1, n_outputs=3)
    state = net.state_dict()
    head = [k for k in source if source[k].shape != state[k].shape]
    assert head and all(k.startswith("head") or "fc" in k or "classifier" in k for k in head)
    body = [k for k in source if k not in head]
    assert body and all(torch.equal(state[k], source[k]) for k in body)


def test_init_from_checkpoint_with_other_input_channels(tmp_path: Path) -> None:
    """A 3-channel LGG U-Net initialises a 1-channel figshare one: first conv summed, rest copied."""
    from braintumor.config import ModelConfig, Preprocessing
    from braintumor.models import create_model
    from braintumor.models.card import ModelCard
    from braintumor.models.network import build_network, init_weights
    from braintumor.models.weights import save_weights

    source = create_model("unet", in_channels=3, out_channels=1, init_features=4)
    card = ModelCard("segment", ModelConfig("unet", kwargs={"init_features": 4}), 3, Preprocessing())
    weights = save_weights(source, tmp_path / "lgg.safetensors", card)
    src = source.state_dict()
    net = build_network(ModelConfig("unet", kwargs={"init_features": 4}), in_channels=1, n_outputs=1)
    report = init_weights(net, "unet", str(weights))
    state = net.state_dict()
    assert report["adapted"] == ["encoder1.enc1conv1.weight"] and not report["skipped"]
    assert torch.allclose(
        state["encoder1.enc1conv1.weight"], src["encoder1.enc1conv1.weight"].sum(1, keepdim=True)
    )
    assert all(torch.equal(state[k], v) for k, v in src.items() if k != "encoder1.enc1conv1.weight")
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():  # a grey image gives what the source gives that image in all 3 channels
        assert torch.allclose(net.eval()(x), source.eval()(x.repeat(1, 3, 1, 1)), atol=1e-5)


def test_step_checkpoints_skip_the_last_batch_of_an_epoch(tmp_path: Path) -> None:
    """A step checkpoint on an epoch's last batch would resume past that epoch's validation."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from braintumor.training.callbacks import MidEpochCheckpoint

    class Recording(MidEpochCheckpoint):
        saved: ClassVar[list[int]] = []

        def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
            self.saved.append(trainer.global_step)

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)  # 4 batches per epoch
    steps = Recording(tmp_path, filename="last", every_n_train_steps=2, save_top_k=1)
    trainer = L.Trainer(max_epochs=2, callbacks=[steps], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(Tiny(), data)
    assert steps.saved == [2, 6]  # steps 4 and 8 end an epoch: left to the end-of-epoch checkpoint


def test_ema_weights_are_validated_exported_and_resumed(tmp_path: Path) -> None:
    from braintumor.training.evaluate import evaluate_run

    cls = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "train.ema_decay=0.9"]
    cls.append("train.scheduler=none")  # resumed below with more epochs
    run = tmp_path / "ema"
    train_fold(load_config(None, [*TINY, *cls, "train.epochs=1"]), run, trainer_overrides=QUIET)
    first = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    averaged, raw = first["state_dict"], first["current_model_state"]
    moved = [k for k in raw if k.endswith("weight") and not torch.equal(raw[k], averaged[k])]
    assert moved  # the checkpoint's weights are the average, not the last step's
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    exported, _ = load_weights(run / "checkpoints" / "best.safetensors")
    assert exported and all(torch.equal(exported[k], best[f"net.{k}"].float()) for k in exported)
    train_fold(load_config(None, [*TINY, *cls, "train.epochs=2"]), run, trainer_overrides=QUIET)
    second = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert second["averaging_state"]["n_averaged"] > first["averaging_state"]["n_averaged"]  # resumed
    metrics = evaluate_run(run, out_dir=tmp_path / "tta", overrides=["eval.tta=true"])
    assert metrics["evaluation"]["tta"] and 0.0 <= metrics["accuracy"] <= 1.0
    with pytest.raises(Exception, match="ema_decay"):
        load_config(None, ["train.ema_decay=1.0"])


def test_missing_modality_augmentation_trains_on_three_channels(tmp_path: Path) -> None:
    cfg = seg_config("data.channels=3", "train.missing_modality_prob=0.5")
    metrics = train_fold(cfg, tmp_path / "run", trainer_overrides=QUIET)
    assert 0.0 <= metrics["dice_per_patient_mean"] <= 1.0
    with pytest.raises(Exception, match="missing_modality_prob"):
        load_config(None, ["train.missing_modality_prob=1.5"])


def test_rerunning_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    """last.ckpt is the end of the last epoch even with step checkpoints and no new best."""
    run = tmp_path / "run"
    # lr 1e-30 leaves every float32 weight as it is: no new best (lr=0 is refused as a setting)
    cfg = seg_config("train.epochs=2", "train.checkpoint_every_steps=1", "train.lr=1.0e-30")
    train_fold(cfg, run, trainer_overrides=QUIET)
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    loop = last["loops"]["fit_loop"]
    assert last["epoch"] == 1 and loop["epoch_loop.batch_progress"]["is_last_batch"]  # not mid-epoch
    weights = (run / "checkpoints" / "best.safetensors").read_bytes()
    history = (run / "history.csv").read_text()
    train_fold(cfg, run, trainer_overrides=QUIET)
    assert (run / "history.csv").read_text() == history
    assert (run / "checkpoints" / "best.safetensors").read_bytes() == weights


def test_evaluate_scores_only_unseen_patients_with_the_trained_inputs(tmp_path: Path) -> None:
    import shutil

    from braintumor.errors import ConfigError
    from braintumor.training.evaluate import evaluate_run

    run = tmp_path / "run"
    train_fold(seg_config(), run, trainer_overrides=QUIET)
    with pytest.raises(ConfigError, match=r"data\.fold=1"):
        evaluate_run(run, overrides=["data.fold=1"])  # fold 1's test patients trained this run
    with pytest.raises(ConfigError, match="image_size"):
        evaluate_run(run, overrides=["data.image_size=16"])
    fold = json.loads((run / "splits.json").read_text())["folds"][0]

    def copy_of_data(name: str, keep: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
        folder = tmp_path / name
        shutil.copytree(run / "phantoms", folder)
        frame = pd.read_csv(run / "phantoms" / "index.csv", dtype={"split": str}, keep_default_na=False)
        keep(frame).to_csv(folder / "index.csv", index=False)
        return folder

    dropped = fold["test"][0]  # data holding all but one test patient: no longer the run's own data
    partial = copy_of_data("partial", lambda f: f[f["patient_id"] != dropped])
    metrics = evaluate_run(run, partial, out_dir=tmp_path / "partial-eval")
    assert metrics["external"] and metrics["excluded_seen"] == len(fold["train"]) + len(fold["val"])
    assert {p["patient_id"] for p in metrics["per_patient"]} == set(fold["test"]) - {dropped}

    renamed = copy_of_data("renamed", lambda f: f.assign(patient_id="ext-" + f["patient_id"]))
    metrics = evaluate_run(run, renamed, out_dir=tmp_path / "renamed-eval")  # all new patients
    assert metrics["external"] and "excluded_seen" not in metrics
    assert metrics["n_patients"] == len(fold["train"]) + len(fold["val"]) + len(fold["test"])

    flat = copy_of_data("flat", lambda f: f.assign(slice=-1))  # separate 2D images, not volumes
    scope = ["eval.postprocess_scope=patient", "eval.largest_component=true"]
    with pytest.raises(ConfigError, match=r"postprocess_scope=slice"):
        evaluate_run(run, flat, out_dir=tmp_path / "flat-eval", overrides=scope)
    per_slice = pd.read_csv(run / "per_slice.csv")
    metrics = evaluate_run(run, flat, out_dir=tmp_path / "flat-eval")
    patients = pd.read_csv(tmp_path / "flat-eval" / "per_patient.csv").set_index("patient_id")
    own = per_slice.groupby("patient_id")["hd95"].mean()  # a patient's images are not stacked
    assert np.allclose(patients.loc[own.index, "hd95"], own, equal_nan=True)


def test_a_model_trained_on_every_patient_ships_its_last_weights(tmp_path: Path) -> None:
    """``data.split=all``: every patient trains, none is held out; without validation the exported
    weights are the last epoch's, and neither scoring nor cross-validation pretend to a test set."""
    from safetensors.torch import load_file

    from braintumor.bundle.create import create_bundle
    from braintumor.data.splits import SplitLeakageError
    from braintumor.errors import ConfigError
    from braintumor.training.evaluate import evaluate_run

    run = tmp_path / "run"
    metrics = train_fold(seg_config("data.split=all", "data.val_fraction=0"), run, trainer_overrides=QUIET)
    fold = json.loads((run / "splits.json").read_text())["folds"][0]
    assert fold["val"] == [] and fold["test"] == [] and len(fold["train"]) == 8
    assert metrics["held_out"] == 0 and metrics["train_patients"] == 8
    assert "dice_per_patient_mean" not in metrics
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    shipped = load_file(str(run / "checkpoints" / "best.safetensors"))
    assert shipped and all(torch.equal(shipped[k], last[f"net.{k}"]) for k in shipped)
    card = json.loads((run / "checkpoints" / "best.json").read_text())
    assert card["monitor"] is None and card["best_score"] is None  # nothing chose among epochs
    assert not (run / "checkpoints" / "best.ckpt").exists()
    with pytest.raises(SplitLeakageError, match="nothing is left to evaluate"):
        evaluate_run(run)
    with pytest.raises(ConfigError, match="nothing to cross-validate"):
        cross_validate(seg_config("data.split=all"), tmp_path / "cv", trainer_overrides=QUIET)
    create_bundle(run, None, tmp_path / "bundle")
    shown = CliRunner().invoke(app, ["bundle", "info", str(tmp_path / "bundle")], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and "none held out: trained on all 8 patients" in shown.output


def test_cv_then_all_trains_the_model_to_ship_beside_its_folds(tmp_path: Path) -> None:
    """``cv --then-all``: after the folds, the configuration trains on every patient into ``all/``,
    and a bundle made from it shows the folds' figures."""
    from braintumor.bundle.create import create_bundle
    from braintumor.bundle.load import bundle_info
    from braintumor.run_dir import RunDir
    from braintumor.training.cv import all_patients_config

    cfg = seg_config("data.val_fraction=0.2", "model.init_from=pre/fold{fold}/w.safetensors")
    final = all_patients_config(cfg)
    assert (final.data.split, final.data.val_fraction) == ("all", 0.0)
    assert final.model.init_from == "pre/all/w.safetensors"  # a pretraining CV's own all/ model
    cv = RunDir(tmp_path / "cv")
    summary = cross_validate(seg_config(), cv.path, folds=[0, 1], then_all=True, trainer_overrides=QUIET)
    assert summary["n_folds"] == 2
    metrics = json.loads(cv.all.metrics.read_text())
    assert metrics["held_out"] == 0 and metrics["train_patients"] == 8
    assert json.loads(cv.all.splits.read_text())["folds"][0]["val"] == []
    record = bundle_info(create_bundle(cv.all.path, None, tmp_path / "b"))["models"]["seg"]["cv_metrics"]
    assert record["n_folds"] == 2 and record["source"] == str(cv.path)
    assert record["mean"]["dice_per_patient_mean"] == pytest.approx(summary["mean"]["dice_per_patient_mean"])


def test_the_last_epoch_of_a_run_is_scored_on_its_held_out_patients(tmp_path: Path) -> None:
    """``scripts/last_epoch_run.py``: a copy of the run with ``last.ckpt``'s weights, which
    ``evaluate`` scores on the same test patients."""
    import importlib.util

    from braintumor.run_dir import RunDir
    from braintumor.training.evaluate import evaluate_run

    script = Path(__file__).parents[2] / "scripts" / "last_epoch_run.py"
    spec = importlib.util.spec_from_file_location("last_epoch_run", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run, copy = RunDir(tmp_path / "run"), RunDir(tmp_path / "last")
    trained = train_fold(seg_config("train.epochs=2"), run.path, trainer_overrides=QUIET)
    assert module.last_epoch_run(run, copy) == 1
    last = torch.load(run.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    state, meta = load_weights(copy.best_weights)
    assert all(torch.equal(state[k], last[f"net.{k}"]) for k in state) and meta["task"] == "segment"
    scored = evaluate_run(copy.path)
    patients = {p["patient_id"] for p in trained["per_patient"]}
    assert {p["patient_id"] for p in scored["per_patient"]} == patients
