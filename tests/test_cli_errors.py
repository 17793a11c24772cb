"""Careless and hostile CLI input: each bad value is one `error:` line naming it, no traceback.

Every case exits non-zero before any training starts; the TINY settings only keep a run small if a
check ever went missing. ``{tmp}`` is the test's folder, ``{seg}`` the session's tiny segmentation run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from braintumor.cli import app

runner = CliRunner()
TINY = ["data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
        "train.batch_size=8", "train.precision=32-true", "train.epochs=1"]  # fmt: skip


def train(*settings: str, out: str = "{tmp}/run") -> list[str]:
    """``train segment`` on tiny phantoms with ``settings`` applied last (so they win)."""
    return ["train", "segment", "--out", out, *(a for s in (*TINY, *settings) for a in ("--set", s))]


CASES: dict[str, tuple[list[str], str]] = {
    "train --out /proc": (train(out="/proc/x"), "/proc/x: cannot write here"),
    "train --out file": (train(out="{tmp}/afile"), "afile: exists and is not a folder; give --out a folder"),
    "evaluate --out /proc": (["evaluate", "{seg}", "--out", "/proc/x"], "/proc/x: cannot write here"),
    "evaluate --out file": (["evaluate", "{seg}", "--out", "{tmp}/afile"], "afile: exists and is not"),
    "phantoms OUT_DIR /proc": (["data", "phantoms", "/proc/x", "--n", "2"], "give OUT_DIR a writable folder"),
    "phantoms OUT_DIR file": (["data", "phantoms", "{tmp}/afile"], "afile: exists and is not a folder"),
    "lr": (train("train.lr=-5"), "train.lr=-5.0; expected a learning rate > 0"),
    "batch size": (train("train.batch_size=0"), "train.batch_size=0; expected a batch size >= 1"),
    "precision": (train("train.precision=fp8"), "train.precision='fp8'; expected one of auto, bf16-mixed"),
    "loss": (train("train.loss=foo"), "train.loss='foo'; expected one of dice, dice-bce"),
    "model": (train("model.name=unet3000"), "unknown model 'unet3000'; valid names: attention-unet"),
    "model of the other task": (train("model.name=resnet18"), "'resnet18' is a classify model"),
    "image size": (train("data.image_size=100000"), "data.image_size=100000; expected a side of 8..4096"),
    "epochs -1": (train("train.epochs=-1"), "train.epochs=-1; expected a whole number of epochs >= 1"),
    "epochs 0": (train("train.epochs=0"), "train.epochs=0; expected"),
    "lr text": (train("train.lr=abc"), "train.lr: expected a finite number, got 'abc'"),
    "override not YAML": (train("train.lr=["), "override 'train.lr=[': '[' is not a YAML value"),
    "config is a PNG": (["train", "segment", "--out", "{tmp}/run", "--config", "{tmp}/cfg.png"],
                        "cfg.png: not a text file (binary content); expected an experiment YAML"),
    "config repeats a section": (["train", "segment", "--out", "{tmp}/run", "--config", "{tmp}/twice.yaml"],
                                 "twice.yaml: not valid YAML (key 'data' appears twice in one mapping"),
    "inspect --format": (["data", "inspect", "{tmp}", "--format", "foo"], "unknown dataset format 'foo'"),
    "empty last.ckpt": (train(out="{tmp}/empty"),
                        "empty/checkpoints/last.ckpt: cannot resume from it: it is empty (0 bytes)"),
    "truncated last.ckpt": (train(out="{tmp}/cut"),
                            "cut/checkpoints/last.ckpt: cannot resume from it: it is truncated or not a"),
    "models --task": (["models", "--task", "foo"], "--task 'foo'; expected one of segment, classify"),
}  # fmt: skip


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    """A file where a folder belongs, a PNG and a config repeating a section as configs, and run
    folders with a broken last.ckpt."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "twice.yaml").write_text("data: fold 0\ntrain:\n  epochs: 1\ndata:\n  image_size: 32\n")
    (tmp_path / "cfg.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10")
    for name in ("empty", "cut"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
    (tmp_path / "empty" / "checkpoints" / "last.ckpt").write_bytes(b"")
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(256)}, "epoch": 3}, whole)
    (tmp_path / "cut" / "checkpoints" / "last.ckpt").write_bytes(whole.read_bytes()[:-300])
    return tmp_path


@pytest.mark.parametrize("args, message", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_error_line(
    bad_inputs: Path, args: list[str], message: str, request: pytest.FixtureRequest
) -> None:
    if "{seg}" in args:
        args = [str(request.getfixturevalue("tiny_runs") / "seg") if a == "{seg}" else a for a in args]
    result = runner.invoke(app, [a.replace("{tmp}", str(bad_inputs)) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert message.replace("{tmp}", str(bad_inputs)) in errors[0], errors[0]
    assert "Traceback" not in result.output + result.stderr
    assert not (bad_inputs / "run").exists()  # refused before any output was written


def test_models_lists_the_names_the_error_points_to() -> None:
    result = runner.invoke(app, ["models", "--task", "segment", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["models"]
    assert models["unet"] == "segment" and "resnet18" not in models
