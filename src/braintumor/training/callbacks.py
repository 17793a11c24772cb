"""Callbacks: per-epoch history CSV (written atomically) and a wall-clock budget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd

from braintumor.io_utils import atomic_write


class HistoryWriter(L.Callback):
    """Appends one row per epoch (epoch, seconds, lr and every logged epoch metric) to ``history.csv``.

    On resume the rows already on disk are kept, so the curve covers the whole training.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._start = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.path.is_file():
            self.rows = pd.read_csv(self.path).to_dict("records")
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if not k.endswith("_step")}
        metrics = {k.removesuffix("_epoch"): v for k, v in metrics.items()}
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        previous = self.rows[-1]["seconds"] if self.rows else 0.0
        row = {"epoch": trainer.current_epoch, "seconds": previous + time.perf_counter() - self._start,
               "lr": lr, **metrics}  # fmt: skip
        self._start = time.perf_counter()
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        frame = pd.DataFrame(self.rows)
        atomic_write(self.path, lambda tmp: frame.to_csv(tmp, index=False))


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
