"""freeze_backbone / unfreeze keep only the classification head trainable."""

from __future__ import annotations

import pytest
import torch

from braintumor.models import count_parameters, create_model, freeze_backbone, unfreeze

HEADS = {
    "resnet18": ["fc.weight", "fc.bias"],
    "densenet121": ["class_layers.out.weight", "class_layers.out.bias"],
    "vgg16": [f"classifier.{i}.{s}" for i in (0, 3, 6) for s in ("weight", "bias")],
    "cnn-small": ["classifier.1.weight", "classifier.1.bias"],
}


@pytest.mark.parametrize("name", list(HEADS))
def test_freeze_and_unfreeze(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, in_channels=1, num_classes=4)
    total = count_parameters(model)
    trainable = freeze_backbone(model, name)
    assert trainable == HEADS[name]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == HEADS[name]
    assert 0 < count_parameters(model, trainable_only=True) < total
    unfreeze(model)
    assert count_parameters(model, trainable_only=True) == total


def test_freeze_needs_a_head() -> None:
    with pytest.raises(ValueError, match="no separable head"):
        freeze_backbone(create_model("basic-unet", features=(4, 4, 4, 4, 4, 4)), "basic-unet")
    with pytest.raises(ValueError, match="no submodule"):
        freeze_backbone(create_model("cnn-small"), "resnet18")
