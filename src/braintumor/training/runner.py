"""Train one fold into a run folder, resumably, and evaluate it on the held-out patients.

A run folder holds ``config.yaml``, ``splits.json``, ``history.csv``, ``checkpoints/`` (Lightning
``last.ckpt`` for resuming; ``best.safetensors`` + ``best.json`` for use), ``metrics.json`` and plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from braintumor import __version__
from braintumor.config import ExperimentConfig, dump_config, to_dict
from braintumor.errors import ConfigError
from braintumor.io_utils import atomic_write_json, prepare_out_dir
from braintumor.models.card import ModelCard
from braintumor.models.network import check_model
from braintumor.models.weights import save_weights
from braintumor.run_dir import RunDir
from braintumor.runtime.precision import scoring_precision, training_precision
from braintumor.training.callbacks import (
    HistoryWriter,
    MidEpochCheckpoint,
    RelocatableCheckpoint,
    ResumableEarlyStopping,
    TimeBudget,
)
from braintumor.training.checkpoint import check_resumable
from braintumor.training.data import FoldData, eval_loader, prepare_fold, preprocessing_of, train_loader
from braintumor.training.modules import module_for


def _callbacks(cfg: ExperimentConfig, run_dir: Path, monitor: str | None) -> list[L.Callback]:
    """Checkpoints, history, budget (and EMA, early stopping); ``monitor`` None: no validation, so
    no best checkpoint nor early stopping, and the last checkpoint is the one exported."""
    ckpt_dir = RunDir(run_dir).checkpoints
    best = RelocatableCheckpoint(ckpt_dir, filename=RunDir.BEST, monitor=monitor, mode="max", save_top_k=1,
                                 enable_version_counter=False)  # fmt: skip
    # "last.ckpt" after every epoch (Lightning's save_last only follows a new best, so a finished run
    # could be left with a mid-epoch state and train again when rerun) and between epochs
    epochs = RelocatableCheckpoint(ckpt_dir, filename=RunDir.LAST, save_top_k=1, enable_version_counter=False)
    steps = MidEpochCheckpoint(  # mid-epoch "last.ckpt" so a killed run loses little
        ckpt_dir, filename=RunDir.LAST, every_n_train_steps=cfg.train.checkpoint_every_steps, save_top_k=1,
        enable_version_counter=False,
    )  # fmt: skip
    callbacks: list[L.Callback] = [
        *([best] if monitor else []),
        epochs,
        steps,
        HistoryWriter(RunDir(run_dir).history),
        TimeBudget(cfg.train.max_minutes),
    ]
    if cfg.train.ema_decay > 0:  # validation, checkpoints and export use the averaged weights
        callbacks.append(EMAWeightAveraging(decay=cfg.train.ema_decay))
    if (patience := cfg.train.early_stopping_patience) > 0 and monitor:
        callbacks.append(ResumableEarlyStopping(monitor, mode="max", patience=patience))
    return callbacks


def make_trainer(cfg: ExperimentConfig, run_dir: Path, monitor: str | None, **overrides: Any) -> L.Trainer:
    """A Lightning Trainer for the config (precision, checkpoints, DDP under torchrun); ``monitor``
    is the validation metric that picks the best checkpoint, None for a fold without validation."""
    options: dict[str, Any] = {
        "max_epochs": cfg.train.epochs,
        "precision": cfg.train.precision,
        "callbacks": _callbacks(cfg, run_dir, monitor),
        "default_root_dir": str(run_dir),
        "logger": False,
        "enable_model_summary": False,
        "deterministic": False,
        "log_every_n_steps": 10,
        "num_sanity_val_steps": 0,
    }
    options.update(overrides)
    return L.Trainer(**options)


@dataclass
class FitResult:
    """What :func:`fit_fold` leaves for export and evaluation."""

    cfg: ExperimentConfig
    fold: FoldData
    trainer: L.Trainer
    module: L.LightningModule
    seconds: float


# settings a resumed run may change: they do not alter what the checkpoint was trained to do
RESUMABLE_CHANGES = frozenset(
    {
        "train.max_minutes",
        "train.checkpoint_every_steps",
        "data.num_workers",
        "data.cache_dir",
        "data.path",
        "train.precision",
    }
)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and key != "kwargs":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_resume_settings(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Refuse to resume a checkpoint with settings other than those it was trained with.

    A budget or the worker count may change; more epochs may be added under a constant or plateau
    schedule, not under ``cosine``, whose decay the checkpoint laid out over the old epoch count
    (it would rise again past it).
    """
    from braintumor.config import load_config

    saved = _flat(to_dict(load_config(RunDir(run_dir).config)))
    asked = _flat(to_dict(cfg))
    changed = sorted(k for k in asked if saved.get(k) != asked[k] and k not in RESUMABLE_CHANGES)
    if changed == ["train.epochs"] and cfg.train.scheduler != "cosine":
        return
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {asked[k]!r}" for k in changed)
        raise ConfigError(
            f"{run_dir}: holds a checkpoint trained with other settings ({detail}); resume it with its "
            "own settings, train into another --out, or start it over with --no-resume"
        )


def fit_fold(
    cfg: ExperimentConfig,
    run_dir: Path,
    resume: bool = True,
    progress: Callable[[int, int], None] | None = None,
    trainer_overrides: dict[str, Any] | None = None,
) -> FitResult:
    """Prepare the fold and fit; resumes from ``checkpoints/last.ckpt`` when it exists."""
    check_model(cfg.model, cfg.train.task)  # before any data is decoded
    last = RunDir(run_dir).last_checkpoint
    resume = resume and last.is_file()
    if resume:
        check_resumable(last)
    prepare_out_dir(run_dir)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    fold = prepare_fold(cfg.data, cfg.train, run_dir, RunDir(run_dir).splits, progress)
    cfg = _resolved(cfg, fold)
    if resume and RunDir(run_dir).config.is_file():
        check_resume_settings(cfg, run_dir)
    dump_config(cfg, RunDir(run_dir).config)
    n_outputs = cfg.model.out_channels if cfg.train.task == "segment" else len(fold.index.classes)
    module = module_for(cfg.train.task)(
        to_dict(cfg.model), to_dict(cfg.train), fold.in_channels, n_outputs, fold.index.classes,
        fold.coord_channels, preprocessing_of(cfg.data).stacked_slices,
    )  # fmt: skip
    monitor = module.monitor if len(fold.val) else None
    trainer = make_trainer(cfg, run_dir, monitor, **(trainer_overrides or {}))
    workers = cfg.data.num_workers
    start = time.perf_counter()
    trainer.fit(
        module,
        train_dataloaders=train_loader(fold.train, cfg.train, workers),
        val_dataloaders=eval_loader(fold.val, cfg.train.batch_size, workers),
        ckpt_path=str(last) if resume else None,
        weights_only=True,
    )
    return FitResult(cfg, fold, trainer, module, time.perf_counter() - start)


def finish_fold(result: FitResult, run_dir: Path) -> dict[str, Any]:
    """Export the best weights and evaluate them on the fold's test patients (rank 0 only); a fold
    that holds none out (``data.split=all``) records what it trained on instead."""
    from braintumor.training.evaluate import evaluate_fold

    cfg, fold, trainer = result.cfg, result.fold, result.trainer
    best = _export_best(trainer, result.module, cfg, fold, run_dir)
    if len(fold.test):
        metrics = evaluate_fold(best, fold, run_dir, scoring_precision(cfg.train.precision), cfg.eval)
    else:
        metrics = _untested(fold)
    history = RunDir(run_dir).history
    seconds = pd.read_csv(history)["seconds"].iloc[-1] if history.is_file() else result.seconds
    metrics["train_seconds"] = round(float(seconds), 1)  # all sessions, resumes included
    metrics["epochs"] = trainer.current_epoch
    atomic_write_json(RunDir(run_dir).metrics, metrics)
    return metrics


def train_fold(
    cfg: ExperimentConfig,
    run_dir: str | Path,
    resume: bool = True,
    progress: Callable[[int, int], None] | None = None,
    trainer_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` on fold ``cfg.data.fold`` into ``run_dir`` and evaluate on its test patients.

    Resumes from ``checkpoints/last.ckpt`` when it exists (``resume=True``). Returns the metrics
    (an empty dict on the non-zero ranks of a distributed run).
    """
    run_dir = Path(run_dir)
    result = fit_fold(cfg, run_dir, resume, progress, trainer_overrides)
    return finish_fold(result, run_dir) if result.trainer.is_global_zero else {}


def _untested(fold: FoldData) -> dict[str, Any]:
    """The metrics of a fold with no test part: what trained it, and where its figures come from."""
    part = fold.splits.folds[fold.fold]
    unit = fold.splits.unit
    return {
        "held_out": 0,
        f"train_{unit}s": len(part["train"]),
        f"val_{unit}s": len(part["val"]),
        "note": f"trained on every {unit} (data.split=all), none held out: the figures of this "
        "configuration are those of its cross-validation",
    }


def _resolved(cfg: ExperimentConfig, fold: FoldData) -> ExperimentConfig:
    """Record the channel count, fold and precision actually used."""
    data = replace(cfg.data, channels=fold.image_channels, fold=fold.fold)
    train = replace(cfg.train, precision=training_precision(cfg.train.precision))
    return replace(cfg, data=data, train=train, model=replace(cfg.model, in_channels=fold.in_channels))


def _export_best(
    trainer: L.Trainer, module: L.LightningModule, cfg: ExperimentConfig, fold: FoldData, run_dir: Path
) -> Path:
    """Write the best (or, without validation, the last) weights as safetensors + metadata."""
    callback = trainer.checkpoint_callback
    best_path = getattr(callback, "best_model_path", "")
    if best_path and Path(best_path).is_file():
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    score = getattr(callback, "best_model_score", None)
    card = ModelCard(
        task=cfg.train.task,
        model=cfg.model,
        in_channels=fold.in_channels,
        preprocessing=preprocessing_of(cfg.data),
        classes=tuple(fold.index.classes),
        best_score=None if score is None else float(score),  # 0.0 is a score, not none
        monitor=getattr(callback, "monitor", None),
        package_version=__version__,
    )
    net = cast(torch.nn.Module, module.net)
    net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # in place
    return save_weights(net, RunDir(run_dir).best_stem, card)
