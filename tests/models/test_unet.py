"""The hand-written LGG U-Net and the size checks of the MONAI segmenters."""

from __future__ import annotations

import pytest
import torch

from braintumor.models import count_parameters, create_model


def test_unet_parameter_count_matches_lgg_reference() -> None:
    with torch.device("meta"):
        model = create_model("unet", in_channels=3, out_channels=1)
    assert count_parameters(model) == pytest.approx(7.76e6, rel=0.01)
    assert count_parameters(model) == 7_763_041  # mateuszbuda/brain-segmentation-pytorch


def test_unet_reference_key_names() -> None:
    with torch.device("meta"):
        keys = set(create_model("unet", init_features=4).state_dict())
    for key in ("encoder1.enc1conv1.weight", "bottleneck.bottlenecknorm2.running_var",
                "upconv4.weight", "decoder1.dec1conv2.weight", "conv.bias"):  # fmt: skip
        assert key in keys


def test_unet_outputs_logits() -> None:
    torch.manual_seed(0)
    model = create_model("unet", in_channels=1, out_channels=2, init_features=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 48) * 10)
    assert out.shape == (2, 2, 32, 48)
    assert out.min() < 0 or out.max() > 1  # not squashed by a sigmoid


def test_unet_bad_size_says_how_to_pad() -> None:
    model = create_model("unet", in_channels=1, init_features=4)
    with pytest.raises(ValueError) as err:
        model(torch.zeros(1, 1, 100, 100))
    assert "divisible by 16; got 100x100, pad to 112x112" in str(err.value)


@pytest.mark.parametrize("name", ["monai-unet", "attention-unet", "dynunet"])
def test_monai_segmenters_check_size(name: str) -> None:
    kwargs = {"filters": (4, 4, 8, 8, 8)} if name == "dynunet" else {"channels": (4, 4, 8, 8, 8)}
    model = create_model(name, in_channels=1, out_channels=1, **kwargs)
    with pytest.raises(ValueError, match="divisible by 16; got 40x64, pad to 48x64"):
        model(torch.zeros(1, 1, 40, 64))


def test_basic_unet_accepts_odd_sizes() -> None:
    model = create_model("basic-unet", in_channels=1, features=(4, 4, 8, 8, 8, 4)).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 40, 56)).shape == (1, 1, 40, 56)
