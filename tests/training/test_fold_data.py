"""The fold's datasets carry the configured augmentation: training only."""

from __future__ import annotations

from pathlib import Path

import pytest

from braintumor.config import DataConfig, TrainConfig
from braintumor.training.data import prepare_fold


@pytest.mark.parametrize(
    ("setting", "transform"), [("gamma_prob", "RandAdjustContrastd"), ("bias_field_prob", "RandBiasFieldd")]
)
def test_an_intensity_setting_reaches_the_training_transforms_only(
    tmp_path: Path, setting: str, transform: str
) -> None:
    data = DataConfig(image_size=32, phantom_count=24, phantom_size=32, folds=2, seed=0)
    train = TrainConfig(task="segment", **{setting: 0.4})
    fold = prepare_fold(data, train, tmp_path / "run", tmp_path / "splits.json")
    found = [t for t in fold.train.transform.transforms if type(t).__name__ == transform]
    assert len(found) == 1 and found[0].prob == pytest.approx(0.4)
    for part in (fold.val, fold.test):
        assert all(type(t).__name__ != transform for t in part.transform.transforms)
