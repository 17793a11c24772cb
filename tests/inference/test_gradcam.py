"""Grad-CAM: target layer per model family, map shape and range, mapping back into the slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inference_helpers import Trained
from PIL import Image

from braintumor.data.roi import crop_roi, roi_box
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.gradcam import GradCamExplainer, gradcam_layer, paste_heatmap
from braintumor.models import create_model

FAMILIES = {
    "cnn-small": ({"channels": (4, 8)}, "features.6"),
    "cnn-deep": ({"channels": (4, 8)}, "features.12"),
    "resnet18": ({}, "layer4"),
    "densenet121": ({}, "class_layers.relu"),
    "vgg16": ({"classifier_width": 8}, "features.29"),
}


@pytest.mark.parametrize("name", FAMILIES)
def test_target_layer_and_map_per_family(name: str) -> None:
    kwargs, layer = FAMILIES[name]
    net = create_model(name, in_channels=1, num_classes=3, **kwargs).eval()
    assert gradcam_layer(net, name) == layer
    x = np.random.default_rng(0).random((3, 1, 32, 32)).astype(np.float32)
    maps = GradCamExplainer(net, name)(x, np.array([0, 2, 0]))
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_fallback_is_last_conv() -> None:
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    assert gradcam_layer(net, "custom") == "2"


def test_paste_inverts_the_crop() -> None:
    rows, cols = np.mgrid[0:48, 0:64].astype(np.float32)
    image = (rows + cols)[None] / 112.0  # smooth ramp in [0, 1]
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 30:50] = 1
    crop, _ = crop_roi(image, mask, 1.5, 64)
    pasted = paste_heatmap(crop[0], mask, 1.5, (48, 64))
    r0, r1, c0, c1 = roi_box(mask, 1.5)
    inner = (slice(r0 + 2, r1 - 2), slice(c0 + 2, c1 - 2))  # the box edge blends with the zero padding
    assert np.abs(pasted[inner] - image[0][inner]).max() < 0.02
    assert pasted[:r0].sum() == 0 and pasted[:, c1:].sum() == 0


def test_analyzer_writes_heatmaps(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    results = analyzer.analyze_files(trained.images(3), tmp_path, gradcam=True)
    tumour = [r for r in results if r.tumour]
    assert tumour, "the tiny segmenter finds a tumour on phantoms"
    for r in tumour:
        heat = r.slices[0].heatmap
        assert heat is not None and heat.shape == (32, 32) and heat.min() >= 0 and heat.max() <= 1
        assert Image.open(r.outputs["gradcam"]).mode == "RGB"
    assert all("gradcam" not in r.outputs for r in results if not r.tumour)
