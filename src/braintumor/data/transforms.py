"""MONAI dictionary-transform presets, applied to image and mask together.

Inputs are samples from :class:`braintumor.data.dataset.CachedDataset`: ``image`` float32 C×H×W and
optionally ``mask`` uint8/float 1×H×W tensors.
"""

from __future__ import annotations

import math

from monai import transforms as T


def train_transforms(with_mask: bool, strength: float = 1.0) -> T.Compose:
    """Flips, a small affine (±15°, ±10 % scale, ±5 % shift) and intensity jitter.

    Spatial transforms move the mask with the image (nearest interpolation keeps it binary).
    """
    keys = ["image", "mask"] if with_mask else ["image"]
    modes = ["bilinear", "nearest"] if with_mask else ["bilinear"]
    return T.Compose(
        [
            T.RandFlipd(keys, prob=0.5, spatial_axis=1),
            T.RandAffined(
                keys,
                prob=0.7 * strength,
                rotate_range=math.radians(15) * strength,
                scale_range=0.1 * strength,
                translate_range=0.05 * strength,
                mode=modes,
                padding_mode="zeros",
            ),
            T.RandScaleIntensityd("image", factors=0.1 * strength, prob=0.5),
            T.RandShiftIntensityd("image", offsets=0.1 * strength, prob=0.5),
            T.RandGaussianNoised("image", prob=0.2, std=0.02 * strength),
            T.EnsureTyped(keys, track_meta=False),
        ]
    )


def eval_transforms(with_mask: bool) -> T.Compose:
    """No augmentation: only make sure outputs are plain tensors."""
    keys = ["image", "mask"] if with_mask else ["image"]
    return T.Compose([T.EnsureTyped(keys, track_meta=False)])
