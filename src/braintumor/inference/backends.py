"""Inference backends: eager torch (bf16 autocast + channels_last when the CPU has fast bf16) and
ONNX Runtime. Both map a float32 B×C×S×S batch to float32 logits for one bundle role.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from braintumor.inference.bundle import Bundle
from braintumor.inference.bundle_store import BundleError

BACKENDS = ("torch", "onnx")
PRECISIONS = ("auto", "bf16", "fp32")


class Backend(Protocol):
    """Runs one bundle network on a batch: B×C×S×S float32 -> B×K(×S×S) float32 logits."""

    name: str

    def run(self, role: str, x: np.ndarray) -> np.ndarray: ...


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


class TorchBackend:
    """Eager PyTorch on CPU.

    Args:
        nets: role -> float32 eval-mode module.
        precision: ``auto`` (bf16 when :func:`bf16_supported`, else fp32), ``bf16`` or ``fp32``.
        channels_last: NHWC memory format; ``None`` = on when running bf16.
    """

    name = "torch"

    def __init__(
        self, nets: dict[str, nn.Module], precision: str = "auto", channels_last: bool | None = None
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS}")
        self.precision = ("bf16" if bf16_supported() else "fp32") if precision == "auto" else precision
        self.channels_last = self.precision == "bf16" if channels_last is None else channels_last
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.nets = {role: net.eval().to(memory_format=fmt) for role, net in nets.items()}  # type: ignore[call-overload]

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        """B×C×S×S float32 -> float32 logits of network ``role``."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        ctx: Any = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()
        with torch.inference_mode(), ctx:
            out = self.nets[role](t)
        return out.float().contiguous().numpy()


class OnnxBackend:
    """ONNX Runtime (CPU execution provider) over the bundle's ``<role>.onnx`` files.

    Args:
        models: role -> serialised ONNX model bytes.
        threads: intra-op threads (0 = ONNX Runtime's default, one per core).
    """

    name = "onnx"

    def __init__(self, models: dict[str, bytes], threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.sessions = {}
        for role, data in models.items():
            try:
                self.sessions[role] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise BundleError(f"{role}.onnx: ONNX Runtime cannot load it ({exc})") from None
        self.inputs = {role: s.get_inputs()[0].name for role, s in self.sessions.items()}

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        """B×C×S×S float32 -> float32 logits of network ``role``."""
        feed = {self.inputs[role]: np.ascontiguousarray(x, dtype=np.float32)}
        out = self.sessions[role].run(None, feed)[0]
        return np.asarray(out, dtype=np.float32)


def make_backend(bundle: Bundle, name: str = "torch", precision: str = "auto") -> Backend:
    """The backend ``name`` (``torch`` or ``onnx``) for a loaded bundle.

    The ONNX backend needs the bundle loaded with ``load_onnx=True`` (``braintumor export`` first).
    """
    if name == "torch":
        return TorchBackend({role: m.net for role, m in bundle.models.items()}, precision)
    if name == "onnx":
        missing = [role for role, m in bundle.models.items() if m.onnx is None]
        if missing:
            raise BundleError(
                f"{bundle.path}: no ONNX model for {missing}; "
                f"run `braintumor export {bundle.path} --format onnx`"
            )
        return OnnxBackend({role: m.onnx for role, m in bundle.models.items() if m.onnx is not None})
    raise BundleError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
