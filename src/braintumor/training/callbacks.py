"""Callbacks: per-epoch history CSV (written atomically), mid-epoch checkpoints and a wall-clock
budget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

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


class RelocatableCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that survives its run folder being moved, renamed or copied elsewhere.

    Lightning stores absolute paths; when the folder differs on resume it forgets the best score
    (the next validation then overwrites the best checkpoint whatever its score) and keeps a best
    path that no longer exists. Paths under the old folder are mapped to the same files here.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            here = Path(self.dirpath)

            def moved(path: str) -> str:
                return str(here / Path(path).name) if path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                "best_model_path": moved(state_dict.get("best_model_path", "")),
                "kth_best_model_path": moved(state_dict.get("kth_best_model_path", "")),
                "last_model_path": moved(state_dict.get("last_model_path", "")),
                "best_k_models": {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()},
            }
        super().load_state_dict(state_dict)


class MidEpochCheckpoint(RelocatableCheckpoint):
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
    """Stop training gracefully after ``minutes`` of training time, summed over every session of a
    resumed run (0 = no limit).

    The time spent is saved in each checkpoint. The check runs when an epoch's validation ends,
    before Lightning's checkpoint callbacks save, so a run stopped by its budget and rerun does not
    train again (it used to restart the clock and train another ``minutes``).
    """

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self._before = 0.0  # spent in earlier sessions (from the checkpoint)
        self._start = time.perf_counter()
        self._validated = -1  # the last epoch whose validation made the decision

    def spent(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return self._before + time.perf_counter() - self._start

    def state_dict(self) -> dict[str, Any]:
        return {"seconds_spent": self.spent()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._before = float(state_dict.get("seconds_spent", 0.0))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seconds > 0 and self._before > self.seconds:  # spent by earlier sessions
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = trainer.current_epoch
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._validated != trainer.current_epoch:  # epochs without validation: decide here
            self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if self.seconds > 0 and self.spent() > self.seconds:
            trainer.should_stop = True


class ResumableEarlyStopping(EarlyStopping):
    """Early stopping that stays stopped: a run it stopped, rerun, trains no further (Lightning's
    restores the patience count but would train one more epoch before checking it)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.wait_count >= self.patience > 0:
            trainer.should_stop = True
