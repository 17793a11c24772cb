"""Every shipped experiment config loads, and names a registered model and loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from braintumor.config import load_config
from braintumor.models import list_models, model_info
from braintumor.training.losses import LOSSES

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.model.name in list_models()
    assert model_info(cfg.model.name).task == cfg.train.task
    assert cfg.train.loss in LOSSES
