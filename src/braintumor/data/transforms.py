"""MONAI dictionary-transform presets, applied to image and mask together.

Inputs are samples from :class:`braintumor.data.dataset.CachedDataset`: ``image`` float32 C×H×W and
optionally ``mask`` uint8/float 1×H×W tensors.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from monai import transforms as T

from braintumor.data.roi import orient_coords


class SplitCoordsd(T.MapTransform):
    """Move the last ``n`` channels of ``image`` (``roi_coords`` position channels) to ``coords``."""

    def __init__(self, n: int) -> None:
        super().__init__(["image"])
        self.n = n

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        image = data["image"]
        return {**data, "image": image[: -self.n], "coords": image[-self.n :]}


class JoinCoordsd(T.MapTransform):
    """Append ``coords`` to ``image`` again, re-oriented after any flip (:func:`orient_coords`)."""

    def __init__(self, n: int) -> None:
        super().__init__(["image"])
        self.n = n

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        coords = orient_coords(torch.as_tensor(out.pop("coords")), self.n)
        out["image"] = torch.cat([torch.as_tensor(out["image"]), coords.to(torch.float32)])
        return out


GAMMA_RANGE = (0.7, 1.5)  # nnU-Net's gamma augmentation range
BIAS_FIELD_COEFFICIENTS = (0.0, 0.1)  # MONAI's default range for a degree-3 Legendre log-field


def train_transforms(
    with_mask: bool,
    strength: float = 1.0,
    affine: bool = False,
    coord_channels: int = 0,
    gamma_prob: float = 0.0,
    bias_field_prob: float = 0.0,
) -> T.Compose:
    """Flips and intensity jitter; with ``affine=True`` also a small affine (±15°, ±10 % scale,
    ±5 % shift) per sample; with ``gamma_prob`` > 0 a random gamma in ``GAMMA_RANGE`` (mean and std
    kept) with that probability, which varies how bright a lesion is against the tissue around it,
    as scanners and protocols do; with ``bias_field_prob`` > 0 a smooth multiplicative bias field
    (degree-3 polynomial, ``BIAS_FIELD_COEFFICIENTS``), the receive-coil shading that differs
    between scanners.

    The training engine leaves ``affine`` off and applies the same affine batched on the device
    (``training/augment.py``), which is ~20x cheaper than MONAI's per-sample ``RandAffined`` on CPU.
    Spatial transforms move the mask with the image (nearest interpolation keeps it binary).
    ``coord_channels`` (the ``roi_coords`` position channels ending ``image``) are kept out of the
    intensity jitter and the affine; a flip mirrors them (the crop of a mirrored slice).
    """
    keys = ["image", "mask"] if with_mask else ["image"]
    modes = ["bilinear", "nearest"] if with_mask else ["bilinear"]
    flip_keys = [*keys, "coords"] if coord_channels else keys
    spatial: list[T.Transform] = [T.RandFlipd(flip_keys, prob=0.5, spatial_axis=1)]
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
    gamma = T.RandAdjustContrastd("image", prob=gamma_prob, gamma=GAMMA_RANGE, retain_stats=True)
    bias = T.RandBiasFieldd("image", prob=bias_field_prob, coeff_range=BIAS_FIELD_COEFFICIENTS)
    intensity = [
        *([bias] if bias_field_prob > 0 else []),
        *([gamma] if gamma_prob > 0 else []),
        T.RandScaleIntensityd("image", factors=0.1 * strength, prob=0.5),
        T.RandShiftIntensityd("image", offsets=0.1 * strength, prob=0.5),
        T.RandGaussianNoised("image", prob=0.2, std=0.02 * strength),
    ]
    if not coord_channels:
        return T.Compose([*spatial, *intensity, T.EnsureTyped(keys, track_meta=False)])
    return T.Compose([
        SplitCoordsd(coord_channels), *spatial, *intensity,
        T.EnsureTyped([*keys, "coords"], track_meta=False), JoinCoordsd(coord_channels),
    ])  # fmt: skip


def eval_transforms(with_mask: bool) -> T.Compose:
    """No augmentation: only make sure outputs are plain tensors."""
    keys = ["image", "mask"] if with_mask else ["image"]
    return T.Compose([T.EnsureTyped(keys, track_meta=False)])
