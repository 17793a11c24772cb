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


def test_tversky_bce_charges_a_missed_pixel_more_than_a_false_one() -> None:
    target = torch.zeros((1, 1, 4, 4))
    target[0, 0, :2, :2] = 1.0
    missed = torch.full_like(target, -20.0)
    missed[0, 0, :2, :2] = 20.0
    missed[0, 0, 0, 0] = -20.0  # tp 3, fn 1, fp 0
    extra = torch.full_like(target, -20.0)
    extra[0, 0, :2, :2] = 20.0
    extra[0, 0, 3, 3] = 20.0  # tp 4, fn 0, fp 1
    loss = create_loss("tversky-bce")
    # 1 - (tp + 1) / (tp + 0.3 fp + 0.7 fn + 1), plus the BCE of the one wrong pixel
    bce = float(binary_cross_entropy_with_logits(missed, target))
    assert float(loss(missed, target)) == pytest.approx(1 - 4 / 4.7 + bce, abs=1e-4)
    assert float(loss(extra, target)) == pytest.approx(1 - 5 / 5.3 + bce, abs=1e-4)
