"""Which floating-point precision this machine runs fast: one answer for training and inference.

bf16 autocast is fast only where the hardware has it (CUDA GPUs since Ampere; CPUs with
AVX512-BF16 or AMX). Elsewhere PyTorch emulates it, and training runs about ten times slower
than in float32 (an AVX2 CPU, 128² U-Net: 6 vs 62 slices/s), so ``auto`` never asks for it there.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

AUTO = "auto"


@functools.cache
def bf16_supported() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN with AVX512-BF16/AMX), checked by
    running a tiny bf16 convolution under autocast and comparing it with fp32."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        conv = nn.Conv2d(2, 4, 3, padding=1).eval()
        x = torch.randn(1, 2, 8, 8)
        with torch.inference_mode():
            ref = conv(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = conv(x.contiguous(memory_format=torch.channels_last)).float()
        return bool(torch.isfinite(out).all() and (out - ref).abs().max() < 0.1)
    except Exception:  # any failure means: do not use bf16 here
        return False


def training_precision(precision: str) -> str:
    """The Lightning precision a run trains in: ``auto`` becomes ``bf16-mixed`` where bf16 is
    native (a CUDA GPU that has it, else this CPU), ``16-mixed`` on an older GPU and ``32-true`` on
    a CPU without bf16. An explicit bf16 on such a CPU is kept, with a warning."""
    on_gpu = torch.cuda.is_available()
    native_bf16 = torch.cuda.is_bf16_supported() if on_gpu else bf16_supported()
    if precision == AUTO:
        return "bf16-mixed" if native_bf16 else ("16-mixed" if on_gpu else "32-true")
    if precision.startswith("bf16") and not native_bf16:
        log.warning(
            "precision %s: this %s has no native bf16, so it is emulated (about 10x slower); "
            "train.precision=auto picks %s here",
            precision, "GPU" if on_gpu else "CPU", "16-mixed" if on_gpu else "32-true",
        )  # fmt: skip
    return precision


def scoring_precision(trained: str) -> str:
    """The precision in which a run's weights are scored on this CPU: ``bf16`` when the run trained
    in bf16 (or ``auto``) and this CPU runs bf16 natively, else ``fp32``. A run trained in bf16 on a
    GPU or another CPU is scored here in float32, never in emulated bf16 (about 10x slower)."""
    return "bf16" if (trained == AUTO or trained.startswith("bf16")) and bf16_supported() else "fp32"
