"""Weights of a network that registers one module under two names (MONAI DynUNet) save and load."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from braintumor.models.weights import load_weights, save_weights


class Aliased(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Conv2d(1, 2, 3)
        self.skip = self.block  # the same parameters under a second name


def test_shared_tensors_are_saved_once_per_name(tmp_path: Path) -> None:
    model = Aliased()
    weights = save_weights(model, tmp_path / "best", {"task": "segment"})
    state, meta = load_weights(weights)
    assert set(state) == set(model.state_dict()) and meta["task"] == "segment"
    fresh = Aliased()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.block.weight, model.block.weight)
