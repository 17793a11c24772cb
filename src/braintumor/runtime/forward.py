"""Precision and thresholds of a network's forward pass, one definition for evaluation and inference."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch


def autocast(precision: str = "bf16-mixed") -> Any:
    """bf16 autocast on CPU when asked for, else nothing."""
    if precision.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def logit_of(threshold: float) -> float:
    """A probability threshold as the logit threshold it equals."""
    return float(np.log(threshold / (1.0 - threshold)))
