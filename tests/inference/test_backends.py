"""Backend parity (ONNX and OpenVINO vs fp32 torch, bf16 vs fp32), batching invariance, TTA and
uncertainty.

Tolerances: ONNX Runtime and OpenVINO fp32 agree with fp32 torch to 1e-3 (absolute) on every
probability and with Dice >= 0.99 on masks. bf16 rounds activations to 8 mantissa bits, so bf16
(torch autocast or OpenVINO's bf16 inference precision) vs fp32 is checked on probabilities within
0.02 (absolute, tumour and class; 4e-4 measured on the tiny models) and Dice >= 0.99 on masks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from inference_helpers import Trained

from braintumor.bundle.load import Bundle
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import (
    OnnxBackend,
    OpenVinoBackend,
    TorchBackend,
    make_backend,
    openvino_available,
)
from braintumor.inference.results import AnalysisResult
from braintumor.runtime.precision import bf16_supported
from braintumor.runtime.tta import class_variance, mask_variance, tta_probabilities


def _dice(a: np.ndarray | None, b: np.ndarray | None) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def _agree(a: list[AnalysisResult], b: list[AnalysisResult], atol: float) -> None:
    for ra, rb in zip(a, b, strict=True):
        assert ra.ok and rb.ok
        assert _dice(ra.slices[0].mask, rb.slices[0].mask) >= 0.99
        assert ra.tumour == rb.tumour
        for key in ("probabilities", "gate_probabilities"):
            pa, pb = getattr(ra, key), getattr(rb, key)
            assert pa.keys() == pb.keys()
            assert all(abs(pa[k] - pb[k]) <= atol for k in pa), (key, pa, pb)


def _analyzer(bundle: Bundle, analyzer: Analyzer, backend: str, precision: str = "fp32") -> Analyzer:
    return Analyzer(bundle, make_backend(bundle, backend, precision), analyzer.settings)


def _inputs(bundle: Bundle, n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 32, 32)).astype(np.float32)


def test_onnx_matches_fp32_torch(trained: Trained, bundle: Bundle, analyzer: Analyzer) -> None:
    onnx, torch32 = _analyzer(bundle, analyzer, "onnx"), _analyzer(bundle, analyzer, "torch", "fp32")
    images = trained.images(8)
    _agree(onnx.analyze_files(images), torch32.analyze_files(images), atol=1e-3)
    x = _inputs(bundle)
    for role in ("seg", "cls", "gate"):
        a, b = onnx.backend.run(role, x), torch32.backend.run(role, x)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-3, role
    assert onnx.backend.run("seg", x[:1]).shape == (1, 1, 32, 32)  # dynamic batch axis


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_matches_fp32_torch(
    trained: Trained, bundle: Bundle, analyzer: Analyzer, precision: str
) -> None:
    if precision == "bf16" and not bf16_supported():
        pytest.skip("this CPU has no native bf16")
    ov, torch32 = _analyzer(bundle, analyzer, "openvino", precision), _analyzer(bundle, analyzer, "torch")
    assert isinstance(ov.backend, OpenVinoBackend) and ov.backend.precision == precision
    atol = 1e-3 if precision == "fp32" else 0.02
    images = trained.images(8)
    _agree(ov.analyze_files(images), torch32.analyze_files(images), atol=atol)
    x = _inputs(bundle)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert np.abs(sig(ov.backend.run("seg", x)) - sig(torch32.backend.run("seg", x))).max() < atol
    assert ov.backend.run("cls", x[:1]).shape == (1, len(bundle.models["cls"].classes))  # dynamic batch


def test_auto_backend_prefers_openvino(bundle: Bundle) -> None:
    backend = make_backend(bundle, "auto")
    assert backend.name == ("openvino" if openvino_available() else "torch")
    with pytest.raises(Exception, match="not one of"):
        make_backend(bundle, "tensorrt")


def test_openvino_backend_rejects_bad_model() -> None:
    from braintumor.bundle.store import BundleError

    with pytest.raises(BundleError, match=r"seg\.onnx: OpenVINO cannot compile"):
        OpenVinoBackend({"seg": b"not onnx"})


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16")
def test_bf16_matches_fp32(trained: Trained, bundle: Bundle, analyzer: Analyzer) -> None:
    bf16, fp32 = _analyzer(bundle, analyzer, "torch", "bf16"), _analyzer(bundle, analyzer, "torch", "fp32")
    assert isinstance(bf16.backend, TorchBackend) and bf16.backend.channels_last
    images = trained.images(8)
    _agree(bf16.analyze_files(images), fp32.analyze_files(images), atol=0.02)
    x = _inputs(bundle)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert np.abs(sig(bf16.backend.run("seg", x)) - sig(fp32.backend.run("seg", x))).max() < 0.02


def test_auto_precision_follows_the_cpu(bundle: Bundle) -> None:
    backend = TorchBackend({"seg": bundle.models["seg"].net}, "auto")
    assert backend.precision == ("bf16" if bf16_supported() else "fp32")
    with pytest.raises(ValueError, match="precision"):
        TorchBackend({}, "fp8")


def test_batching_and_prefetch_do_not_change_results(trained: Trained, analyzer: Analyzer) -> None:
    images = trained.images(5)
    one = Analyzer(
        analyzer.bundle, analyzer.backend, replace(analyzer.settings, batch_size=1, prefetch=False)
    )
    many = Analyzer(analyzer.bundle, analyzer.backend, replace(analyzer.settings, batch_size=16))
    _agree(one.analyze_files(images), many.analyze_files(images), atol=1e-5)


def test_onnx_backend_rejects_bad_model() -> None:
    from braintumor.bundle.store import BundleError

    with pytest.raises(BundleError, match=r"seg\.onnx: ONNX Runtime cannot load"):
        OnnxBackend({"seg": b"not onnx"})


def test_tta_flips_back_and_uncertainty() -> None:
    x = np.random.default_rng(1).random((3, 1, 8, 8)).astype(np.float32)
    probs = tta_probabilities(lambda b: b * 4 - 2, x, "segment", ("none", "h", "v", "hv"))
    assert probs.shape == (4, 3, 8, 8)
    assert np.allclose(probs, probs[0])  # an equivariant "model": every flip agrees once flipped back
    assert mask_variance(probs, probs[0] > 0.5) == pytest.approx([0.0] * 3, abs=1e-12)
    logits = np.stack([np.arange(3.0), np.arange(3.0)[::-1]]).astype(np.float32)  # 2 samples × 3 classes
    cls = tta_probabilities(
        lambda b: logits[: len(b)] if len(b) == 2 else np.tile(logits, (2, 1)), logits, "classify"
    )
    assert cls.shape == (2, 2, 3) and np.allclose(cls.sum(-1), 1)
    assert class_variance(cls) == pytest.approx([0.0, 0.0], abs=1e-12)
    disagree = np.array([[[0.9, 0.1]], [[0.5, 0.5]]], np.float32)  # F=2, B=1, K=2
    assert class_variance(disagree)[0] == pytest.approx(np.var([0.9, 0.5]))
    one_view = probs[:1]  # no flip: nothing to compare, so no uncertainty (not "all agree")
    assert mask_variance(one_view, one_view[0] > 0.5) == [None] * 3
    assert class_variance(cls[:1]) == [None, None]
