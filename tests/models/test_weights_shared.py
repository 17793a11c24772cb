"""Weights of a network that registers one module under two names (MONAI DynUNet) save and load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from braintumor import __version__
from braintumor.config import ModelConfig, Preprocessing
from braintumor.models.card import ModelCard
from braintumor.models.weights import load_weights, read_card, save_weights


class Aliased(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Conv2d(1, 2, 3)
        self.skip = self.block  # the same parameters under a second name


def test_shared_tensors_are_saved_once_per_name(tmp_path: Path) -> None:
    model = Aliased()
    card = ModelCard("segment", ModelConfig("unet"), 1, Preprocessing())
    weights = save_weights(model, tmp_path / "best", card)
    state, meta = load_weights(weights)
    assert set(state) == set(model.state_dict()) and meta["task"] == "segment"
    assert read_card(weights) == replace(card, package_version=__version__)
    fresh = Aliased()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.block.weight, model.block.weight)
