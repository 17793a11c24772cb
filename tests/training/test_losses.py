"""Segmentation losses: batch Dice against a hand-computed value."""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from braintumor.training.losses import create_loss


def test_batch_dice_pools_the_batch_and_spares_empty_slices() -> None:
    logits = torch.full((2, 1, 4, 4), -20.0)
    logits[0, 0, :2, :2] = 20.0  # slice 0: the tumour, found exactly
    logits[1, 0, 0, 0] = 20.0  # slice 1: empty truth, one false-positive pixel
    target = torch.zeros_like(logits)
    target[0, 0, :2, :2] = 1.0
    bce = float(binary_cross_entropy_with_logits(logits, target))
    # pooled: tp 4, |pred| 5, |truth| 4 -> 1 - (2*4 + 1) / (5 + 4 + 1)
    batch = float(create_loss("dice-bce-batch")(logits, target))
    assert batch == pytest.approx(1 - 9 / 10 + bce, abs=1e-4)
    # per slice: slice 0 scores 0, slice 1 scores 1 - 1 / (1 + 1) = 0.5; their mean is 0.25
    per_slice = float(create_loss("dice-bce")(logits, target))
    assert per_slice == pytest.approx(0.25 + bce, abs=1e-4)
