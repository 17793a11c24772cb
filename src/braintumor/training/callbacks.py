"""Callbacks: per-epoch history CSV (written atomically), mid-epoch checkpoints and a wall-clock
budget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import ModelCheckpoint

from braintumor.io_utils import atomic_write


class HistoryWriter(L.Callback):
    """One row per epoch (epoch, cumulative seconds, lr, mean train loss, validation metrics) in
    ``history.csv``.

    The row is written at the end of validation, which Lightning runs before its checkpoint
    callbacks: a checkpoint never covers an epoch that the history lacks, so a run killed at any
    point and resumed keeps one row per epoch. Rows from a later epoch than the one being written
    (work after the last checkpoint) are replaced.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._losses: list[float] = []
        self._written = -1
        self._start = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.path.is_file():
            self.rows = [{str(k): v for k, v in r.items()} for r in pd.read_csv(self.path).to_dict("records")]
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._losses = []

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)  # epochs without validation

    def _write(self, trainer: L.Trainer) -> None:
        epoch = trainer.current_epoch
        if epoch == self._written:
            return
        self._written = epoch
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        kept = [r for r in self.rows if int(r["epoch"]) < epoch]
        previous = float(kept[-1]["seconds"]) if kept else 0.0
        train_loss = sum(self._losses) / len(self._losses) if self._losses else float("nan")
        row = {"epoch": epoch, "seconds": previous + time.perf_counter() - self._start, "lr": lr,
               "train_loss": train_loss, **metrics}  # fmt: skip
        self._start = time.perf_counter()
        self.rows = [*kept, row]
        frame = pd.DataFrame(self.rows)
        atomic_write(self.path, lambda tmp: frame.to_csv(tmp, index=False))


class MidEpochCheckpoint(ModelCheckpoint):
    """Step checkpoints (``every_n_train_steps``) strictly inside an epoch.

    A step checkpoint taken on an epoch's last batch records the epoch's training as finished
    before its validation has run; a run killed during that validation would resume at the next
    epoch, skipping the validation and its history row. The end-of-epoch checkpoint (``last.ckpt``
    after validation) covers that moment instead.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx + 1 >= trainer.num_training_batches:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class TimeBudget(L.Callback):
    """Stop training gracefully after ``minutes`` of wall-clock time (0 = no limit)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self._start = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seconds > 0 and time.perf_counter() - self._start > self.seconds:
            trainer.should_stop = True
