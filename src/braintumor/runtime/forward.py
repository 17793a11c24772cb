"""A network's forward pass, its precision and thresholds: one definition for evaluation and inference."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from braintumor.runtime.precision import AUTO, bf16_supported


def autocast(precision: str = "auto") -> Any:
    """bf16 autocast on CPU when asked for (``auto``: where the CPU runs bf16 natively), else nothing."""
    if precision.startswith("bf16") or (precision == AUTO and bf16_supported()):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def torch_logits(
    net: nn.Module, x: np.ndarray, precision: str = "fp32", channels_last: bool = False
) -> np.ndarray:
    """The forward pass every path runs: B×C×S×S float32 -> float32 logits of ``net`` (eval mode),
    under bf16 autocast when ``precision`` starts with ``bf16`` (or is ``auto`` on a CPU with native
    bf16), in NHWC memory with ``channels_last``."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(precision):
        out = net(t)
    return out.float().contiguous().numpy()


def logit_of(threshold: float) -> float:
    """A probability threshold as the logit threshold it equals."""
    return float(np.log(threshold / (1.0 - threshold)))
