"""Every shipped experiment config loads, names a registered model and loss, and builds a network
that maps its input channels to the right output shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from braintumor.config import load_config
from braintumor.models import list_models, model_info
from braintumor.training.losses import LOSSES
from braintumor.training.network import build_network

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.model.name in list_models()
    assert model_info(cfg.model.name).task == cfg.train.task
    assert cfg.train.loss in LOSSES


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_network_builds_and_runs(path: Path) -> None:
    cfg = load_config(path)
    in_channels = (cfg.data.channels or 1) + (2 if cfg.data.roi_coords else 0)
    segment = cfg.train.task == "segment"
    n_outputs = cfg.model.out_channels if segment else 3
    net = build_network(cfg.model, in_channels, n_outputs).eval()
    with torch.no_grad():
        out = net(torch.rand(2, in_channels, 64, 64))
    assert out.shape == ((2, n_outputs, 64, 64) if segment else (2, n_outputs))
