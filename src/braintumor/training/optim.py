"""Optimisers and learning-rate schedules from the training config.

The names (``OPTIMIZERS``, ``SCHEDULERS``) live in :mod:`braintumor.config`, which refuses others
when the config is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from braintumor.config import TrainConfig


def create_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (momentum 0.9, Nesterov) with the config's lr and weight decay."""
    optimizers: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adamw": lambda: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "sgd": lambda: torch.optim.SGD(
            params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
        ),
    }
    return optimizers[cfg.optimizer]()


def create_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, monitor: str
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` dict, or None for a constant rate."""
    if cfg.scheduler == "cosine":
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        return {"scheduler": sched, "interval": "epoch"}
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
        return {"scheduler": sched, "interval": "epoch", "monitor": monitor}
    return None  # "none"
