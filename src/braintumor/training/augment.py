"""Batched random affine augmentation on tensors already on the training device.

MONAI's per-sample ``RandAffined`` cost about 22 ms per 64² slice on this 2-core CPU (measured),
more than the U-Net step itself, so the spatial affine runs here on the whole batch with one
``affine_grid`` + ``grid_sample`` (bilinear for images, nearest for masks). The cheap per-sample
transforms (flips, intensity jitter) stay in the MONAI pipeline of ``data/transforms.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    image: torch.Tensor,
    mask: torch.Tensor | None = None,
    rotate_deg: float = 15.0,
    scale: float = 0.1,
    translate: float = 0.05,
    prob: float = 0.7,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotate (±``rotate_deg``), scale (±``scale``) and shift (±``translate`` of the size) each
    sample of a B×C×H×W batch with probability ``prob``; the B×1×H×W mask follows exactly."""
    b = image.shape[0]
    device = image.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator).mul(high - low).add(low).to(device)

    apply = (torch.rand(b, generator=generator) < prob).to(device)
    angle = uniform(-rotate_deg, rotate_deg) * math.pi / 180 * apply
    zoom = 1 + uniform(-scale, scale) * apply
    shift = (
        torch.stack([uniform(-translate, translate), uniform(-translate, translate)], 1) * 2 * apply[:, None]
    )
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(image.dtype), list(image.shape), align_corners=False)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_mask = None
    if mask is not None:
        warped = F.grid_sample(
            mask.to(image.dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        out_mask = warped.to(mask.dtype)
    return out, out_mask


def replace_missing_modalities(
    image: torch.Tensor,
    reference: int,
    prob: float,
    generator: torch.Generator | None = None,
    slices: int = 1,
) -> torch.Tensor:
    """Overwrite each channel other than ``reference`` with the ``reference`` channel, independently
    per sample and channel with probability ``prob``, in a B×C×H×W batch. With ``slices`` stacked
    slices of C / ``slices`` channels each (2.5D input), a sequence goes missing in all of them.

    The LGG release (Buda et al.) stores a patient's missing pre- or post-contrast sequence as a copy
    of FLAIR (channel 1); six of its 89 sample patients have FLAIR in all three channels. A model that
    never sees such input misses their tumours entirely, so training shows it some.
    """
    b, c = image.shape[0], image.shape[1] // slices
    if not 0 <= reference < c:
        raise ValueError(
            f"modality reference channel {reference} does not exist in a {c}-channel batch; set "
            "train.modality_reference_channel to the FLAIR channel (1 for LGG)"
        )
    replace = torch.rand(b, c, generator=generator) < prob
    replace[:, reference] = False
    if not replace.any():
        return image
    stacked = image.reshape(b, slices, c, *image.shape[2:])
    mask = replace.to(image.device)[:, None, :, None, None]
    out = torch.where(mask, stacked[:, :, reference : reference + 1].expand_as(stacked), stacked)
    return out.reshape(image.shape)


LESION_FADE_MAX = 0.5  # the largest share of a lesion's contrast to the rest of the brain taken away


def fade_lesions(
    image: torch.Tensor,
    mask: torch.Tensor,
    prob: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Lower the contrast of each annotated lesion, with probability ``prob`` per sample.

    The pixels of a B×C×H×W batch are pulled towards the mean of the rest of the sample's non-zero
    pixels (per channel) by a random fraction up to :data:`LESION_FADE_MAX`, through the B×1×H×W
    mask blurred over 7 pixels so that no edge appears. Samples with an empty mask are left alone.
    Sites differ in how bright the same FLAIR abnormality is (TCGA-DU's are the faintest of the LGG
    release); this shows the model fainter lesions than its training sites have.
    """
    b = image.shape[0]
    lesion = mask.to(image.dtype)
    pick = (torch.rand(b, generator=generator) < prob).to(image.device) & (lesion.flatten(1).amax(1) > 0)
    if not pick.any():
        return image
    fade = torch.rand(b, generator=generator).to(image.device) * LESION_FADE_MAX * pick
    soft = F.avg_pool2d(lesion, 7, stride=1, padding=3)
    rest = ((image != 0).any(1, keepdim=True) & (lesion == 0)).to(image.dtype)
    level = (image * rest).sum((2, 3), keepdim=True) / rest.sum((2, 3), keepdim=True).clamp_min(1)
    return image - fade[:, None, None, None] * soft * (image - level)
