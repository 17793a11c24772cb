"""Optimisers and learning-rate schedules from the training config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from braintumor.config import TrainConfig
from braintumor.errors import ConfigError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "plateau", "none")


def create_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD (momentum 0.9, Nesterov) with the config's lr and weight decay."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    raise ConfigError(f"train.optimizer={cfg.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")


def create_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, monitor: str
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` dict, or None for a constant rate."""
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cosine":
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(cfg.epochs, 1))
        return {"scheduler": sched, "interval": "epoch"}
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
        return {"scheduler": sched, "interval": "epoch", "monitor": monitor}
    raise ConfigError(f"train.scheduler={cfg.scheduler!r}; valid: {', '.join(SCHEDULERS)}")
