"""The fold's datasets carry the configured augmentation: training only."""

from __future__ import annotations

from pathlib import Path

import pytest

from braintumor.config import DataConfig, TrainConfig
from braintumor.training.data import prepare_fold


def test_the_gamma_setting_reaches_the_training_transforms_only(tmp_path: Path) -> None:
    data = DataConfig(image_size=32, phantom_count=24, phantom_size=32, folds=2, seed=0)
    fold = prepare_fold(
        data, TrainConfig(task="segment", gamma_prob=0.4), tmp_path / "run", tmp_path / "splits.json"
    )
    gammas = [t for t in fold.train.transform.transforms if type(t).__name__ == "RandAdjustContrastd"]
    assert len(gammas) == 1 and gammas[0].prob == pytest.approx(0.4)
    for part in (fold.val, fold.test):
        assert all(type(t).__name__ != "RandAdjustContrastd" for t in part.transform.transforms)


def test_the_bias_field_setting_reaches_the_training_transforms_only(tmp_path: Path) -> None:
    data = DataConfig(image_size=32, phantom_count=24, phantom_size=32, folds=2, seed=0)
    fold = prepare_fold(
        data, TrainConfig(task="segment", bias_field_prob=0.3), tmp_path / "run", tmp_path / "splits.json"
    )
    fields = [t for t in fold.train.transform.transforms if type(t).__name__ == "RandBiasFieldd"]
    assert len(fields) == 1 and fields[0].prob == pytest.approx(0.3)
    for part in (fold.val, fold.test):
        assert all(type(t).__name__ != "RandBiasFieldd" for t in part.transform.transforms)
