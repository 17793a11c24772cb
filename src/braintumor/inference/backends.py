"""Inference backends: eager torch (bf16 autocast + channels_last when the CPU has fast bf16),
ONNX Runtime and OpenVINO (bf16 inference precision where the CPU has it). Each maps a float32
B×C×S×S batch to float32 logits for one bundle role.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from braintumor.bundle.load import Bundle
from braintumor.bundle.store import BundleError
from braintumor.extras import available, require
from braintumor.runtime.forward import torch_logits
from braintumor.runtime.precision import bf16_supported

BACKENDS = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("auto", "bf16", "fp32")


class Backend(Protocol):
    """Runs one bundle network on a batch: B×C×S×S float32 -> B×K(×S×S) float32 logits."""

    name: str

    def run(self, role: str, x: np.ndarray) -> np.ndarray: ...


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
        return torch_logits(self.nets[role], x, self.precision, self.channels_last)


class OnnxBackend:
    """ONNX Runtime (CPU execution provider) over the bundle's ``<role>.onnx`` files.

    Args:
        models: role -> serialised ONNX model bytes.
        threads: intra-op threads (0 = ONNX Runtime's default, one per core).
    """

    name = "onnx"

    def __init__(self, models: dict[str, bytes], threads: int = 0) -> None:
        ort = require("onnxruntime", "onnx", "the ONNX backend (--backend onnx)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between calls: the pipeline's own work (decoding, cropping) needs the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


class OpenVinoBackend:
    """OpenVINO on CPU, compiled from ONNX with a dynamic batch axis.

    Args:
        models: role -> serialised ONNX model bytes (the bundle's, or exported in memory).
        precision: ``auto`` (bf16 when :func:`bf16_supported`, else fp32), ``bf16`` or ``fp32``;
            OpenVINO's ``INFERENCE_PRECISION_HINT``.
        threads: inference threads (0 = OpenVINO's default, one per core).
    """

    name = "openvino"

    def __init__(self, models: dict[str, bytes], precision: str = "auto", threads: int = 0) -> None:
        ov = require("openvino", "openvino", "the OpenVINO backend (--backend openvino)")
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; expected one of {PRECISIONS}")
        self.precision = ("bf16" if bf16_supported() else "fp32") if precision == "auto" else precision
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one stream using every thread on one batch at a time
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self.compiled = {}
        for role, data in models.items():
            try:
                self.compiled[role] = core.compile_model(core.read_model(data, b""), "CPU", config)
            except Exception as exc:
                raise BundleError(f"{role}.onnx: OpenVINO cannot compile it ({exc})") from None
        self._local = threading.local()  # one infer request per role and thread (the server's workers)

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        """B×C×S×S float32 -> float32 logits of network ``role``."""
        requests = self._local.__dict__.setdefault("requests", {})
        if role not in requests:
            requests[role] = self.compiled[role].create_infer_request()
        out = requests[role].infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.array(out[0], dtype=np.float32)


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports here."""
    return available("openvino")


def _openvino_usable(bundle: Bundle) -> bool:
    """OpenVINO imports, and the bundle's ONNX files are loaded or ``onnx`` can export them."""
    return openvino_available() and (bundle.has_onnx or available("onnx"))


def _onnx_models(bundle: Bundle) -> dict[str, bytes]:
    """Each role's ONNX bytes: the bundle's file when loaded, else exported in memory."""
    from braintumor.bundle.export import onnx_bytes

    if not bundle.has_onnx:
        require("onnx", "openvino", "the OpenVINO backend (it exports the networks to ONNX in memory)")
    return {
        role: m.onnx if m.onnx is not None else onnx_bytes(m.net, m.in_channels, m.prep.image_size)
        for role, m in bundle.models.items()
    }


def make_backend(bundle: Bundle, name: str = "auto", precision: str = "auto", threads: int = 0) -> Backend:
    """The backend ``name`` for a loaded bundle: ``auto``, ``torch``, ``onnx`` or ``openvino``.

    ``auto`` is OpenVINO when it is installed (fastest here: docs/RESULTS.md), else torch, silently
    (``pip install 'braintumor[openvino]'`` adds it); an explicit ``onnx`` or ``openvino`` without its
    package raises :class:`~braintumor.errors.MissingExtraError`. The ONNX
    backend needs the bundle loaded with ``load_onnx=True`` (``braintumor export`` first); OpenVINO
    uses those files when loaded and otherwise exports the networks to ONNX in memory.
    """
    if name == "auto":
        name = "openvino" if _openvino_usable(bundle) else "torch"
    if name == "openvino":
        return OpenVinoBackend(_onnx_models(bundle), precision, threads)
    if name == "torch":
        return TorchBackend({role: m.net for role, m in bundle.models.items()}, precision)
    if name == "onnx":
        missing = [role for role, m in bundle.models.items() if m.onnx is None]
        if missing:
            raise BundleError(
                f"{bundle.path}: no ONNX model for {missing}; "
                f"run `braintumor export {bundle.path} --format onnx`"
            )
        return OnnxBackend({r: m.onnx for r, m in bundle.models.items() if m.onnx is not None}, threads)
    raise BundleError(f"backend {name!r} is not one of {', '.join(BACKENDS)}")
