"""Batched training augmentation: missing-modality replacement."""

from __future__ import annotations

import pytest
import torch

from braintumor.training.augment import replace_missing_modalities


def _batch() -> torch.Tensor:
    """B×3×4×4 with channel c of sample b filled with 10·b + c (every channel distinct)."""
    b = torch.arange(64).float()[:, None, None, None] * 10
    c = torch.arange(3).float()[None, :, None, None]
    return (b + c).expand(64, 3, 4, 4).clone()


def test_probability_one_copies_flair_everywhere_and_zero_changes_nothing() -> None:
    x = _batch()
    out = replace_missing_modalities(x, reference=1, prob=1.0)
    assert torch.equal(out, x[:, 1:2].expand_as(x))
    assert torch.equal(replace_missing_modalities(x, 1, 0.0), x)


def test_each_other_channel_is_replaced_independently() -> None:
    x = _batch()
    out = replace_missing_modalities(x, 1, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 1], x[:, 1])  # the reference channel is never touched
    replaced = out[:, :, 0, 0] == x[:, 1:2, 0, 0]
    kept = out[:, :, 0, 0] == x[:, :, 0, 0]
    assert (replaced | kept).all()  # a channel is either itself or FLAIR, never anything else
    for c in (0, 2):
        assert 16 < int(replaced[:, c].sum()) < 48  # about half of 64
    assert (replaced[:, 0] != replaced[:, 2]).any()  # not all-or-nothing per sample


def test_bad_reference_channel_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="modality_reference_channel"):
        replace_missing_modalities(_batch(), reference=3, prob=0.5)
