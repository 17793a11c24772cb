"""Every shipped experiment config loads, names a registered model and loss, and builds a network
that maps its input channels to the right output shape; a setting out of its range is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from braintumor.config import LOSS_NAMES, load_config
from braintumor.errors import ConfigError
from braintumor.models import list_models, model_info
from braintumor.models.network import build_network
from braintumor.training.losses import LOSSES

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


OUT_OF_RANGE = [
    "data.image_size=4097", "data.image_size=4", "data.channels=-1", "data.normalization=none2",
    "data.percentiles=[99, 10]", "data.percentiles=[10, 101]", "data.percentiles=[10]",
    "data.roi_expansion=0.5", "data.folds=1", "data.fold=5", "data.fold=-1", "data.val_fraction=1.0",
    "data.val_fraction=-0.1", "data.seed=-1", "data.num_workers=-1", "data.phantom_count=0",
    "data.phantom_size=2", "model.name=''", "model.in_channels=0", "model.out_channels=0",
    "model.kwargs=3", "train.task=detect", "train.epochs=0", "train.epochs=-1", "train.epochs=true",
    "train.batch_size=0", "train.lr=0", "train.lr=.nan", "train.lr=.inf", "train.weight_decay=-1",
    "train.optimizer=lion", "train.scheduler=step", "train.loss=foo", "train.precision=fp8",
    "train.precision=32", "train.tumour_fraction=1.5", "train.early_stopping_patience=-1",
    "train.freeze_epochs=-1", "train.unfreeze_lr_factor=0", "train.max_minutes=-1",
    "train.checkpoint_every_steps=0", "train.ema_decay=1.0", "train.missing_modality_prob=2",
    "train.modality_reference_channel=-1", "train.gamma_prob=-0.1", "train.lesion_fade_prob=1.5",
    "train.bias_field_prob=2", "train.seed=4294967296",
    "eval.threshold=1",
    "eval.component_fraction=1.5", "eval.postprocess_scope=volume", "eval.batch_size=0",
]  # fmt: skip


@pytest.mark.parametrize("override", OUT_OF_RANGE)
def test_out_of_range_setting_is_refused_naming_it(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}\b.*expected"):
        load_config(None, [override])


def test_edge_values_are_accepted() -> None:
    edges = ["data.image_size=8", "data.image_size=4096", "data.folds=2", "data.fold=1",
             "data.val_fraction=0", "data.percentiles=[0, 100]", "data.roi_expansion=1",
             "train.epochs=1", "train.batch_size=1", "train.weight_decay=0", "train.max_minutes=0",
             "train.tumour_fraction=1", "train.early_stopping_patience=0",
             "eval.component_fraction=0"]  # fmt: skip
    load_config(None, edges)


def test_loss_names_are_the_registered_losses() -> None:
    assert sorted(LOSS_NAMES) == LOSSES.names()
