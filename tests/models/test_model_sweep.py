"""Smoke test of the whole registry at 64×64: forward shapes and a few optimiser steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from braintumor.models import create_model, list_models, model_info
from braintumor.models.registry import accepted_arguments

SIZE = 64
TRAIN_SIZE = 32  # the optimiser steps only need finite gradients; keep them cheap


def _tiny_kwargs(name: str, in_channels: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"in_channels": in_channels}
    if model_info(name).task == "segment":
        kwargs["out_channels"] = 2
    else:
        kwargs["num_classes"] = 3
    if "classifier_width" in accepted_arguments(name):
        kwargs["classifier_width"] = 64
    return kwargs


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", list_models())
def test_forward_shape(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, **_tiny_kwargs(name, in_channels)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, in_channels, SIZE, SIZE))
    if model_info(name).task == "segment":
        assert out.shape == (1, 2, SIZE, SIZE)
    else:
        assert out.shape == (1, 3)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_models(task="classify"))
def test_classifier_trains(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, **_tiny_kwargs(name, 1)).train()
    x, y = torch.randn(2, 1, TRAIN_SIZE, TRAIN_SIZE), torch.tensor([0, 2])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimiser.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
