"""Ensembles of trained runs: probability averaging and the refusal of members that saw the test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.training.ensemble import ProbabilityMean

TINY_SEG = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
    "model.kwargs={init_features: 4}", "train.epochs=1",
]  # fmt: skip


class Constant(nn.Module):
    """Returns the same logits for every input of the batch."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[2:])


def test_mask_probabilities_are_averaged_not_logits() -> None:
    x = torch.zeros(2, 1, 3, 3)
    p = [0.9, 0.5, 0.1]
    members = [Constant([torch.logit(torch.tensor(q)).item()]) for q in p]
    out = ProbabilityMean(members)(x)
    assert out.shape == (2, 1, 3, 3)
    assert torch.sigmoid(out) == pytest.approx(torch.full_like(out, 0.5), abs=1e-5)
    two = ProbabilityMean(members[:2])(x)  # mean probability 0.7, whereas mean logit gives 0.75
    assert torch.sigmoid(two)[0, 0, 0, 0].item() == pytest.approx(0.7, abs=1e-5)


def test_class_probabilities_are_averaged_and_returned_as_log_probabilities() -> None:
    x = torch.zeros(1, 1, 4, 4)
    a, b = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([-1.0, 3.0, 0.0])
    out = ProbabilityMean([Constant(a.tolist()), Constant(b.tolist())])(x)
    expected = (a.softmax(0) + b.softmax(0)) / 2
    assert out.exp()[0, :, 0, 0] == pytest.approx(expected, abs=1e-6)
    assert out.exp().sum(1).flatten() == pytest.approx(torch.ones(16), abs=1e-6)


def test_evaluate_ensemble_of_same_fold_runs_and_refuse_a_member_that_saw_the_test_patients(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    runs = {}
    for name, fold in (("a", 0), ("b", 0), ("other_fold", 1)):
        runs[name] = tmp_path / name
        sets = [a for s in [*TINY_SEG, f"data.fold={fold}"] for a in ("--set", s)]
        result = runner.invoke(app, ["train", "segment", "--out", str(runs[name]), *sets, "--json"])
        assert result.exit_code == 0, result.output

    def evaluate(*args: str) -> dict:
        result = runner.invoke(app, ["evaluate", str(runs["a"]), *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    alone = evaluate("--out", str(tmp_path / "alone"))
    itself = evaluate("--ensemble", str(runs["a"]), "--out", str(tmp_path / "self"))
    assert itself["dice_per_patient_mean"] == pytest.approx(alone["dice_per_patient_mean"], abs=1e-6)
    pair = evaluate("--ensemble", str(runs["b"]), "--out", str(tmp_path / "pair"))
    assert pair["ensemble"] == [str(runs["a"]), str(runs["b"])]
    assert pair["n_patients"] == alone["n_patients"]
    tuned = evaluate("--ensemble", str(runs["b"]), "--tune", "--out", str(tmp_path / "tuned"))
    assert tuned["tuning"]["n_candidates"] == 48
    refused = tmp_path / "refused"
    result = runner.invoke(app, ["evaluate", str(runs["a"]), "--ensemble", str(runs["other_fold"]),
                                 "--out", str(refused)])  # fmt: skip
    assert result.exit_code != 0
    assert "other_fold" in result.output and "must not have seen" in result.output
    assert not refused.exists()  # refused before anything is written
    resized = tmp_path / "resized"
    sets = [a for s in [*TINY_SEG, "data.image_size=48"] for a in ("--set", s)]
    assert runner.invoke(app, ["train", "segment", "--out", str(resized), *sets]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(runs["a"]), "--ensemble", str(resized),
                                 "--out", str(tmp_path / "mixed")])  # fmt: skip
    assert result.exit_code != 0 and "preprocessing" in result.output  # fed 32² inputs, not its 48²
