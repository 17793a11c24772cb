"""Grad-CAM heat maps for the classifier (``monai.visualize.GradCAM``): of the ROI classifier on
its tumour crop (:func:`paste_heatmap` maps it back into the slice), or of a classify-only bundle's
whole-slice classifier (:func:`unpad_heatmap`).

The target layer is found per registered model family: the last conv block's activation
(``layer4`` for ResNets, ``class_layers.relu`` for DenseNet-121, the last ReLU of ``features``
for VGG and the custom CNNs), falling back to the last ``Conv2d`` for any other model.
Maps are upsampled to the classifier's input size and scaled to [0, 1] per sample (1 = most
important; MONAI's default normaliser would invert them, so it is replaced).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from braintumor.data.roi import roi_box


def gradcam_layer(net: nn.Module, model_name: str) -> str:
    """Name of the module whose activations Grad-CAM uses for registered model ``model_name``."""
    names = dict(net.named_modules())
    if model_name.startswith("resnet") and "layer4" in names:
        return "layer4"
    if model_name.startswith("densenet") and "class_layers.relu" in names:
        return "class_layers.relu"
    features = names.get("features")
    if isinstance(features, nn.Sequential):
        relus = [f"features.{i}" for i, m in enumerate(features) if isinstance(m, nn.ReLU)]
        if relus:
            return relus[-1]
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"model {model_name!r} has no Conv2d layer for Grad-CAM")
    return convs[-1]


def _unit_range(x: torch.Tensor) -> np.ndarray:
    """B×1×H×W -> B×1×H×W float32 scaled to [0, 1] per sample (constant maps become 0)."""
    flat = x.detach().float().reshape(len(x), -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    span = (hi - lo).clamp_min(1e-12)[:, None, None, None]
    out = ((x.detach().float() - lo[:, None, None, None]) / span).clamp(0, 1)
    out[(hi - lo) <= 1e-12] = 0
    return out.numpy().astype(np.float32)


class GradCamExplainer:
    """Grad-CAM for one classifier; works on a private float32 copy of the network.

    Args:
        net: the trained classifier (not modified).
        model_name: its registered name (selects the target layer).
    """

    def __init__(self, net: nn.Module, model_name: str) -> None:
        from monai.visualize import GradCAM

        self.net = copy.deepcopy(net).float().eval().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        for p in self.net.parameters():
            p.requires_grad_(True)
        self.layer = gradcam_layer(self.net, model_name)
        self.cam = GradCAM(nn_module=self.net, target_layers=self.layer, postprocessing=_unit_range)

    def __call__(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Heat maps for B×C×S×S float32 crops and their B predicted class indices.

        Returns:
            float32 B×S×S in [0, 1].
        """
        out = np.zeros((len(x), x.shape[-2], x.shape[-1]), np.float32)
        with torch.inference_mode(False), torch.enable_grad():
            for c in np.unique(classes):  # MONAI's class score is per class, not per sample
                idx = np.flatnonzero(classes == c)
                t = torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)).clone()
                maps = self.cam(t, class_idx=int(c))
                out[idx] = np.asarray(maps)[:, 0]
        return out


def paste_heatmap(cam: np.ndarray, mask: np.ndarray, expansion: float, shape: tuple[int, int]) -> np.ndarray:
    """Map a crop-space S×S heat map back into the H×W slice (zero outside the ROI box).

    Inverts :func:`braintumor.data.roi.crop_roi`: the box is padded symmetrically to a square and
    resized to S×S, so the map is resized to the square's side and its padding cut off.
    """
    r0, r1, c0, c1 = roi_box(mask, expansion)
    heat = np.zeros(shape, np.float32)
    heat[r0:r1, c0:c1] = unpad_heatmap(cam, (r1 - r0, c1 - c0))
    return heat


def unpad_heatmap(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Map an S×S heat map of an image padded to a square and resized to S×S back onto the H×W
    image (``shape``): resized to the square's side, its padding cut off; float32 in [0, 1]."""
    h, w = shape
    side = max(h, w)
    t = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy()
    top, left = (side - h) // 2, (side - w) // 2
    return np.clip(up[top : top + h, left : left + w], 0, 1).astype(np.float32)
