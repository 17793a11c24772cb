"""Registry behaviour: names, tasks, argument errors, parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from braintumor.models import (
    MODELS,
    ModelArgumentError,
    count_parameters,
    create_model,
    list_models,
    model_info,
    register_model,
)
from braintumor.registry import UnknownNameError

EXPECTED = {
    "segment": {"unet", "monai-unet", "attention-unet", "basic-unet", "dynunet"},
    "classify": {"cnn-small", "cnn-deep", "resnet18", "resnet50", "densenet121", "vgg16", "vgg19"},
}


def test_expected_models_are_registered_with_their_task() -> None:
    for task, names in EXPECTED.items():
        assert names <= set(list_models(task=task))
    assert set(list_models()) == set(list_models(task="segment")) | set(list_models(task="classify"))
    assert list_models("vgg*") == ["vgg16", "vgg16-bn", "vgg19", "vgg19-bn"]
    assert model_info("resnet18").head == "fc"


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        create_model("resnet-18")
    message = str(err.value)
    assert "resnet-18" in message
    for name in ("resnet18", "unet", "densenet121", "cnn-small"):
        assert name in message


def test_bad_kwargs_name_model_and_accepted_arguments() -> None:
    with pytest.raises(ModelArgumentError) as err:
        create_model("cnn-small", in_channels=1, n_classes=4)
    message = str(err.value)
    assert "'cnn-small'" in message and "n_classes" in message
    assert "num_classes=4" in message and "dropout" in message
    assert isinstance(err.value, TypeError)


def test_bad_task_and_duplicate_name_are_rejected() -> None:
    with pytest.raises(ValueError, match="task"):
        list_models(task="detect")
    with pytest.raises(ValueError, match="already registered"):
        register_model("unet", task="segment")(lambda: nn.Identity())
    assert "unet" in MODELS


def test_count_parameters_trainable_only() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    assert count_parameters(model) == 8 + 3
    assert count_parameters(model, trainable_only=True) == 3


@pytest.mark.parametrize(
    ("name", "torchvision_count"),
    [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("densenet121", 7_978_856),
        ("vgg16", 138_357_544),
        ("vgg16-bn", 138_365_992),
        ("vgg19", 143_667_240),
        ("vgg19-bn", 143_678_248),
    ],
)
def test_backbones_have_torchvision_parameter_counts(name: str, torchvision_count: int) -> None:
    with torch.device("meta"):  # no memory, no init cost
        model = create_model(name, in_channels=3, num_classes=1000)
    assert count_parameters(model) == torchvision_count


def test_slim_resnet_width_scales_every_stage() -> None:
    slim = create_model("resnet18", width=32)
    assert count_parameters(slim) == 2_796_772  # about a quarter of the 11.17 M standard model
    widths = [m.out_channels for m in slim.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths[0] == 32 and max(widths) == 256
    assert slim(torch.zeros(2, 1, 64, 64)).shape == (2, 4)
    with pytest.raises(ValueError, match="width must be at least 8"):
        create_model("resnet18", width=4)


@pytest.mark.parametrize("name", ["vgg16", "vgg19-bn"])
def test_slim_vgg_conv_width_scales_every_stage(name: str) -> None:
    slim = create_model(name, conv_width=16, classifier_width=64)
    widths = [m.out_channels for m in slim.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths[0] == 16 and max(widths) == 128  # stages 16-32-64-128-128 (standard: 64…512)
    assert slim.classifier[0].in_features == 128 * 7 * 7
    assert slim(torch.zeros(2, 1, 64, 64)).shape == (2, 4)
    with pytest.raises(ValueError, match="conv_width must be at least 8"):
        create_model(name, conv_width=4)


def test_slim_densenet_keeps_its_layers_and_narrows_them() -> None:
    standard = create_model("densenet121")
    slim = create_model("densenet121", growth_rate=12, init_features=24)
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in standard.modules())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in slim.modules()) == n_convs == 120
    assert count_parameters(slim) < count_parameters(standard) / 5
    assert slim(torch.zeros(2, 1, 64, 64)).shape == (2, 4)
