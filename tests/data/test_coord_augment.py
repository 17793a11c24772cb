"""Position channels (``roi_coords``) under augmentation and flip TTA: a flipped crop carries the
coordinates of the mirrored slice, and intensity jitter, the affine and missing modalities leave
them alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from braintumor.data.phantom import make_phantom
from braintumor.data.roi import crop_roi, orient_coords
from braintumor.data.transforms import train_transforms
from braintumor.runtime.tta import tta_logits, tta_probabilities
from braintumor.training.modules import ClassificationModule


def _crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return crop_roi(image, mask, 1.5, 24, coords=True)[0]


@pytest.fixture
def slice_and_mask() -> tuple[np.ndarray, np.ndarray]:
    """A phantom slice with a square tumour box off the centre (square: no padding whose odd
    split would shift a mirrored crop by a pixel)."""
    image, _ = make_phantom(np.random.default_rng(4), "meningioma", 64, 1)
    mask = np.zeros((64, 64), np.uint8)
    mask[12:28, 34:50] = 1
    return image, mask


def _increasing(crops: np.ndarray | torch.Tensor) -> bool:
    """Row channel grows down the rows and column channel along the columns, in every crop."""
    c = torch.as_tensor(np.array(crops))
    c = c[None] if c.ndim == 3 else c
    return bool((c[:, -2, -1, 0] > c[:, -2, 0, 0]).all() and (c[:, -1, 0, -1] > c[:, -1, 0, 0]).all())


@pytest.mark.parametrize("axis", [-1, -2, (-2, -1)])
def test_a_flipped_crop_gets_the_mirrored_slices_coordinates(slice_and_mask, axis) -> None:
    image, mask = slice_and_mask
    mirrored = _crop(np.flip(image, axis), np.flip(mask, axis))
    flipped = orient_coords(np.flip(_crop(image, mask), axis), 2)
    assert flipped.dtype == np.float32
    assert np.allclose(flipped, mirrored, atol=1e-5)  # image channel and both coordinate channels
    # the same in torch, on a batch
    batch = torch.from_numpy(np.stack([_crop(image, mask)] * 2))
    dims = (axis,) if isinstance(axis, int) else axis
    assert torch.allclose(orient_coords(torch.flip(batch, dims), 2), torch.from_numpy(mirrored)[None])


def test_unflipped_crops_and_plain_inputs_pass_through(slice_and_mask) -> None:
    crop = _crop(*slice_and_mask)
    assert np.array_equal(orient_coords(crop, 2), crop)
    assert orient_coords(crop, 0) is crop
    with pytest.raises(ValueError, match="roi_coords"):
        orient_coords(crop, 3)


def test_training_transforms_jitter_the_image_only(slice_and_mask) -> None:
    image, mask = slice_and_mask
    crop = _crop(image, mask)
    mirrored = _crop(np.flip(image, -1), np.flip(mask, -1))
    transform = train_transforms(with_mask=False, strength=3.0, coord_channels=2)
    transform.set_random_state(0)
    n_flipped = 0
    for _ in range(40):
        sample = transform({"image": torch.from_numpy(crop.copy()), "label": 0})
        out = sample["image"]
        assert "coords" not in sample and isinstance(out, torch.Tensor) and out.shape == crop.shape
        flipped = torch.allclose(out[1:], torch.from_numpy(mirrored[1:]))
        assert flipped or torch.equal(out[1:], torch.from_numpy(crop[1:]))  # coordinates: exact
        n_flipped += flipped
    assert 5 < n_flipped < 35
    # without position channels the whole input is jittered, as before
    plain = train_transforms(with_mask=False, strength=3.0)
    plain.set_random_state(0)
    outs = [plain({"image": torch.from_numpy(crop.copy())})["image"] for _ in range(20)]
    assert any(not torch.allclose(o[1:].abs(), torch.from_numpy(crop[1:]).abs()) for o in outs)


def test_batched_affine_and_missing_modalities_skip_position_channels(slice_and_mask) -> None:
    image, mask = slice_and_mask
    three = np.concatenate([image] * 3)
    crop = torch.from_numpy(
        np.stack([crop_roi(three * (k + 1), mask, 1.5, 24, coords=True)[0] for k in range(8)])
    )
    module = ClassificationModule(
        {"name": "cnn-small"},
        {"task": "classify", "augment": True, "missing_modality_prob": 1.0, "channels_last": False},
        in_channels=5,
        n_outputs=3,
        classes=["a", "b", "c"],
        coord_channels=2,
    )
    module.train()
    torch.manual_seed(0)
    out = module.on_after_batch_transfer({"image": crop.clone(), "label": torch.zeros(8)}, 0)["image"]
    assert out.shape == crop.shape
    assert torch.equal(out[:, 3:], crop[:, 3:])  # positions untouched
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 2], out[:, 1])  # FLAIR everywhere
    assert not torch.equal(out[:, :3], crop[:, :3])  # the image itself was warped


def test_flip_tta_shows_the_model_increasing_coordinates(slice_and_mask) -> None:
    crops = np.stack([_crop(*slice_and_mask)] * 3)
    seen: list[np.ndarray] = []

    def run(x: np.ndarray) -> np.ndarray:
        seen.append(x)
        return np.zeros((len(x), 3), np.float32)

    tta_probabilities(run, crops, "classify", ("none", "h", "v", "hv"), coord_channels=2)
    assert seen[0].shape == (12, 3, 24, 24) and _increasing(seen[0])

    def forward(x: np.ndarray) -> np.ndarray:
        assert _increasing(x)
        return np.zeros((len(x), 3), np.float32)

    logits = tta_logits(forward, crops, "classify", ("none", "h", "hv"), coord_channels=2)
    assert logits.shape == (3, 3) and np.allclose(np.exp(logits), 1 / 3)
    # a flipped view without re-orientation would have failed the check
    assert not _increasing(np.flip(crops, -1))


def test_gamma_augmentation_changes_relative_brightness_not_the_mask_or_coordinates(slice_and_mask) -> None:
    image, mask = slice_and_mask
    crop = _crop(image, mask)
    source = torch.from_numpy(crop)
    transform = train_transforms(with_mask=False, strength=0.0, coord_channels=2, gamma_prob=1.0)
    transform.set_random_state(3)
    unflipped = [
        out for out in (transform({"image": source.clone()})["image"] for _ in range(8))
        if torch.equal(out[1:], source[1:])  # coordinates untouched by the gamma
    ]  # fmt: skip
    assert unflipped
    order = torch.argsort(source[0].flatten())
    for out in unflipped:
        assert not torch.allclose(out[0], source[0], atol=1e-3)  # a gamma, not the identity
        assert out[0].mean() == pytest.approx(float(source[0].mean()), abs=1e-4)  # mean and std kept
        assert out[0].std() == pytest.approx(float(source[0].std()), abs=1e-3)
        assert (torch.diff(out[0].flatten()[order]) >= -1e-5).all()  # brightness order kept
    seg = train_transforms(with_mask=True, strength=0.0, gamma_prob=1.0)
    seg.set_random_state(3)
    sample = seg({"image": torch.from_numpy(image.copy()), "mask": torch.from_numpy(mask[None].copy())})
    assert any(torch.equal(sample["mask"][0], torch.from_numpy(m.copy())) for m in (mask, np.flip(mask, -1)))
    names = [type(t).__name__ for t in train_transforms(with_mask=False).transforms]
    assert "RandAdjustContrastd" not in names  # off unless asked for


def test_bias_field_shades_the_image_smoothly_and_leaves_mask_and_background(slice_and_mask) -> None:
    _, mask = slice_and_mask
    image = np.full((3, 64, 64), 0.5, np.float32)
    image[:, :, :4] = 0.0  # background (left edge only, so a flip shows) stays background
    seg = train_transforms(with_mask=True, strength=0.0, bias_field_prob=1.0)
    seg.set_random_state(5)
    sample = seg({"image": torch.from_numpy(image), "mask": torch.from_numpy(mask[None].copy())})
    out = sample["image"].numpy()
    out = out if np.allclose(out[:, :, :4], 0.0) else np.flip(out, -1)  # undo a random flip
    assert np.allclose(out[:, :, :4], 0.0)
    field = out[:, :, 4:] / 0.5
    assert not np.allclose(field, 1.0, atol=1e-3)  # a field, not the identity
    assert field.min() > 0.3 and field.max() < 3.0  # a shading, not a new image
    assert np.abs(np.diff(field, axis=-1)).max() < 0.1  # smooth from pixel to pixel
    assert any(torch.equal(sample["mask"][0], torch.from_numpy(m.copy())) for m in (mask, np.flip(mask, -1)))
    names = [type(t).__name__ for t in train_transforms(with_mask=False).transforms]
    assert "RandBiasFieldd" not in names  # off unless asked for
