"""MONAI dictionary-transform presets, applied to image and mask together.

Inputs are samples from :class:`braintumor.data.dataset.CachedDataset`: ``image`` float32 C×H×W and
optionally ``mask`` uint8/float 1×H×W tensors.
"""

from __future__ import annotations

import math

from monai import transforms as T


def train_transforms(with_mask: bool, strength: float = 1.0, affine: bool = False) -> T.Compose:
    """Flips and intensity jitter; with ``affine=True`` also a small affine (±15°, ±10 % scale,
    ±5 % shift) per sample.

    The training engine leaves ``affine`` off and applies the same affine batched on the device
    (``training/augment.py``), which is ~20x cheaper than MONAI's per-sample ``RandAffined`` on CPU.
    Spatial transforms move the mask with the image (nearest interpolation keeps it binary).
    """
    keys = ["image", "mask"] if with_mask else ["image"]
    modes = ["bilinear", "nearest"] if with_mask else ["bilinear"]
    spatial: list[T.Transform] = [T.RandFlipd(keys, prob=0.5, spatial_axis=1)]
    if affine:
        spatial.append(
            T.RandAffined(
                keys,
                prob=0.7 * strength,
                rotate_range=math.radians(15) * strength,
                scale_range=0.1 * strength,
                translate_range=0.05 * strength,
                mode=modes,
                padding_mode="zeros",
            )
        )
    intensity = [
        T.RandScaleIntensityd("image", factors=0.1 * strength, prob=0.5),
        T.RandShiftIntensityd("image", offsets=0.1 * strength, prob=0.5),
        T.RandGaussianNoised("image", prob=0.2, std=0.02 * strength),
        T.EnsureTyped(keys, track_meta=False),
    ]
    return T.Compose([*spatial, *intensity])


def eval_transforms(with_mask: bool) -> T.Compose:
    """No augmentation: only make sure outputs are plain tensors."""
    keys = ["image", "mask"] if with_mask else ["image"]
    return T.Compose([T.EnsureTyped(keys, track_meta=False)])
