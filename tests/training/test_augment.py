"""Batched training augmentation: missing-modality replacement."""

from __future__ import annotations

import pytest
import torch

from braintumor.training.augment import LESION_FADE_MAX, fade_lesions, replace_missing_modalities


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


def _brain_with_lesion() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 3-channel 32² samples: a brain (0.2) on a zero background with a bright lesion (0.8);
    the second sample has an empty mask."""
    image = torch.zeros(2, 3, 32, 32)
    image[:, :, 4:28, 4:28] = 0.2
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 12:18, 12:18] = 1
    image[0, :, 12:18, 12:18] = 0.8
    return image, mask


def test_fading_lowers_lesion_contrast_within_its_bound_and_nothing_far_from_it() -> None:
    image, mask = _brain_with_lesion()
    out = fade_lesions(image, mask, prob=1.0, generator=torch.Generator().manual_seed(0))
    centre = out[0, :, 14:16, 14:16]
    assert (centre < 0.8 - 1e-4).all()  # fainter ...
    assert (centre >= 0.8 - LESION_FADE_MAX * 0.6 - 1e-5).all()  # ... by at most the bound
    assert torch.equal(out[0, :, :, :8], image[0, :, :, :8])  # far from the lesion: untouched
    assert torch.equal(out[0, :, :4], image[0, :, :4])  # background stays 0
    assert torch.equal(out[1], image[1])  # an empty mask: nothing to fade
    assert torch.equal(fade_lesions(image, mask, prob=0.0), image)


def test_the_segmentation_module_fades_training_batches_only() -> None:
    from braintumor.training.modules import SegmentationModule

    image, mask = _brain_with_lesion()
    train = {"task": "segment", "augment": True, "lesion_fade_prob": 1.0, "channels_last": False}
    module = SegmentationModule(
        {"name": "monai-unet", "kwargs": {"channels": [4, 8]}}, train, in_channels=3, n_outputs=1, classes=[]
    )
    module.train()
    torch.manual_seed(0)
    out = module.on_after_batch_transfer({"image": image.clone(), "mask": mask.clone()}, 0)
    lesion = out["mask"][0, 0].bool()
    assert lesion.any() and out["image"][0, 1][lesion].mean() < 0.8 - 1e-3  # the lesion, wherever warped
    module.eval()
    kept = module.on_after_batch_transfer({"image": image.clone(), "mask": mask.clone()}, 0)
    assert torch.equal(kept["image"], image)
