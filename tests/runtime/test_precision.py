"""`auto` precision: bf16 only where the hardware runs it natively (emulated bf16 trains ~10x slower)."""

from __future__ import annotations

import logging

import pytest
import torch

from braintumor.runtime import forward, precision
from braintumor.runtime.precision import training_precision


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return monkeypatch


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_follows_its_bf16(cpu_only: pytest.MonkeyPatch, native: bool, expected: str) -> None:
    cpu_only.setattr(precision, "bf16_supported", lambda: native)
    assert training_precision("auto") == expected


def test_auto_on_a_gpu_without_bf16_takes_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert training_precision("auto") == "16-mixed"


def test_an_explicit_precision_is_kept_and_emulated_bf16_warned(
    cpu_only: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cpu_only.setattr(precision, "bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        assert training_precision("32-true") == "32-true"
        assert not caplog.records
        assert training_precision("bf16-mixed") == "bf16-mixed"
    assert "emulated" in caplog.text and "32-true" in caplog.text


@pytest.mark.parametrize("native", [True, False])
def test_inference_autocast_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(forward, "bf16_supported", lambda: native)
    conv = torch.nn.Conv2d(1, 1, 1)
    with forward.autocast("auto"):
        dtype = conv(torch.ones(1, 1, 2, 2)).dtype
    assert dtype == (torch.bfloat16 if native else torch.float32)
    with forward.autocast("fp32"):
        assert conv(torch.ones(1, 1, 2, 2)).dtype == torch.float32


@pytest.mark.parametrize(
    ("trained", "native", "expected"),
    [("bf16-mixed", True, "bf16"), ("bf16-mixed", False, "fp32"), ("32-true", True, "fp32"),
     ("16-mixed", True, "fp32"), ("auto", True, "bf16"), ("auto", False, "fp32")],
)  # fmt: skip
def test_a_run_is_scored_in_bf16_only_where_this_cpu_runs_it(
    monkeypatch: pytest.MonkeyPatch, trained: str, native: bool, expected: str
) -> None:
    """A run trained in bf16 on a GPU is scored in float32 on a CPU without native bf16."""
    monkeypatch.setattr(precision, "bf16_supported", lambda: native)
    assert precision.scoring_precision(trained) == expected
