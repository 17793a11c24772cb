"""Loading torchvision-layout weights: key mapping, file formats, grayscale adaptation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from braintumor.errors import DataError
from braintumor.models import (
    adapt_first_conv,
    create_model,
    load_pretrained,
    torchvision_to_monai_keys,
)

StateDict = dict[str, torch.Tensor]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# ----------------------------------------------------------------- torchvision layouts, by rule


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{s}" for s in BN]


def tv_resnet_keys(bottleneck: bool, layers: list[int]) -> set[str]:
    """Key names of torchvision.models.resnet{18,50} (written from torchvision's layout rules)."""
    keys = ["conv1.weight", *_bn("bn1"), "fc.weight", "fc.bias"]
    expansion, convs, inplanes = (4, 3, 64) if bottleneck else (1, 2, 64)
    for i, (blocks, planes) in enumerate(zip(layers, [64, 128, 256, 512], strict=True)):
        for j in range(blocks):
            p = f"layer{i + 1}.{j}"
            for c in range(1, convs + 1):
                keys += [f"{p}.conv{c}.weight", *_bn(f"{p}.bn{c}")]
            if j == 0 and (i > 0 or inplanes != planes * expansion):
                keys += [f"{p}.downsample.0.weight", *_bn(f"{p}.downsample.1")]
        inplanes = planes * expansion
    return set(keys)


def tv_densenet121_keys(legacy: bool = False) -> set[str]:
    """Key names of torchvision.models.densenet121 (``legacy``: the old ``norm.1`` spelling)."""
    dot = "." if legacy else ""
    keys = ["features.conv0.weight", *_bn("features.norm0"), *_bn("features.norm5")]
    keys += ["classifier.weight", "classifier.bias"]
    for b, n in enumerate((6, 12, 24, 16), start=1):
        for i in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            keys += [*_bn(f"{p}.norm{dot}1"), f"{p}.conv{dot}1.weight"]
            keys += [*_bn(f"{p}.norm{dot}2"), f"{p}.conv{dot}2.weight"]
        if b < 4:
            keys += [*_bn(f"features.transition{b}.norm"), f"features.transition{b}.conv.weight"]
    return set(keys)


def tv_vgg16_keys() -> set[str]:
    """Key names of torchvision.models.vgg16 (conv at the features indices, no BN)."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    keys, index = [], 0
    for v in cfg:
        if v != "M":
            keys += [f"features.{index}.weight", f"features.{index}.bias"]
        index += 1 if v == "M" else 2  # conv + relu, or pool
    keys += [f"classifier.{i}.{s}" for i in (0, 3, 6) for s in ("weight", "bias")]
    return set(keys)


def to_torchvision(state: StateDict, legacy: bool = False) -> StateDict:
    """Inverse of the MONAI renaming (DenseNet), identity for ResNet / VGG."""
    out = {}
    for key, tensor in state.items():
        key = key.replace("class_layers.out.", "classifier.")
        if ".layers." in key:
            key = key.replace(".layers.", ".")
            if legacy:
                key = key.replace("norm1", "norm.1").replace("norm2", "norm.2")
                key = key.replace("conv1", "conv.1").replace("conv2", "conv.2")
        out[key] = tensor.clone()
    return out


CASES = {
    "resnet18": (tv_resnet_keys(False, [2, 2, 2, 2]), "fc.", {}),
    "resnet50": (tv_resnet_keys(True, [3, 4, 6, 3]), "fc.", {}),
    "densenet121": (tv_densenet121_keys(), "class_layers.out.", {}),
    "vgg16": (tv_vgg16_keys(), "classifier.6.", {"classifier_width": 64}),
}


def _randomise(model: nn.Module, seed: int) -> StateDict:
    """Perturb every float tensor (BN statistics too) so it differs from a fresh init.

    Activations stay of moderate size, so output comparisons are meaningful (no inf == inf).
    """
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for key, tensor in state.items():
            if not tensor.is_floating_point():
                continue
            noise = torch.rand(tensor.shape, generator=gen)
            if key.endswith("running_var"):
                tensor.copy_(noise + 0.5)
            else:
                tensor.add_((noise - 0.5) * 0.2 * (tensor.std() if tensor.numel() > 1 else 1))
    return state


def _save(state: StateDict, path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


# ----------------------------------------------------------------------------- key mapping


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("name", list(CASES))
def test_torchvision_file_loads_backbone_and_skips_head(name: str, suffix: str, tmp_path: Path) -> None:
    tv_keys, head, kwargs = CASES[name]
    source = create_model(name, in_channels=3, num_classes=10, **kwargs)
    tv_state = to_torchvision(_randomise(source, seed=1))
    assert set(tv_state) == tv_keys  # our layout is torchvision's, up to the documented renames
    path = _save(tv_state, tmp_path / f"{name}{suffix}")

    model = create_model(name, in_channels=3, num_classes=4, **kwargs)
    report = load_pretrained(model, path, name)

    mapped = torchvision_to_monai_keys(tv_state, name)
    state = model.state_dict()
    for key, tensor in state.items():
        if key.startswith(head):
            assert key in report.skipped and "head" in report.skipped[key]
            assert key in report.missing
        else:
            assert torch.equal(tensor, mapped[key]), key
    assert len(report.loaded) == len(state) - 2 and not report.adapted


def test_densenet_legacy_key_spelling(tmp_path: Path) -> None:
    source = create_model("densenet121", in_channels=3, num_classes=4)
    tv_state = to_torchvision(_randomise(source, seed=2), legacy=True)
    assert set(tv_state) == tv_densenet121_keys(legacy=True)
    model = create_model("densenet121", in_channels=3, num_classes=4)
    report = load_pretrained(model, _save(tv_state, tmp_path / "d.pt"), "densenet121")
    assert not report.missing and not report.skipped
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[key]), key


def test_wrapped_and_prefixed_checkpoint(tmp_path: Path) -> None:
    source = create_model("resnet18", in_channels=3, num_classes=4)
    state = {f"module.{k}": v for k, v in _randomise(source, seed=3).items()}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state}, path)
    report = load_pretrained(create_model("resnet18", in_channels=3, num_classes=4), path, "resnet18")
    assert not report.missing


def test_bad_files_are_reported(tmp_path: Path) -> None:
    model = create_model("cnn-small")
    with pytest.raises(DataError, match="not found"):
        load_pretrained(model, tmp_path / "none.safetensors", "resnet18")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(DataError, match="unknown weights format"):
        load_pretrained(model, tmp_path / "w.npz", "resnet18")
    path = _save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "w.safetensors")
    with pytest.raises(DataError, match="no tensor fits"):
        load_pretrained(model, path, "resnet18")
    with pytest.raises(ValueError, match="supported"):
        load_pretrained(model, path, "cnn-small")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "obj": nn.Linear(1, 1)}, path)
    with pytest.raises(DataError, match="cannot read weights"):
        load_pretrained(create_model("resnet18"), path, "resnet18")


# ------------------------------------------------------------------- grayscale adaptation


def test_adapt_first_conv_rules() -> None:
    weight = torch.randn(8, 3, 7, 7)
    assert torch.equal(adapt_first_conv(weight, 3), weight)
    assert torch.allclose(adapt_first_conv(weight, 1), weight.sum(1, keepdim=True))
    five = adapt_first_conv(weight, 5)
    assert five.shape == (8, 5, 7, 7)
    assert torch.allclose(five[:, 0], five[:, 4])
    # a constant image gives the same response whatever the channel count
    assert torch.allclose(five.sum(1), weight.sum(1), atol=1e-5)
    # a 2.5D model (3 slices of 3 channels): each slice gets the source filters, a third as strong,
    # so three identical slices respond as the 2D model does to one
    nine = adapt_first_conv(weight, 9)
    assert torch.allclose(nine[:, 3:6], weight / 3) and torch.allclose(nine[:, 6:9], weight / 3)
    image = torch.randn(1, 3, 16, 16)
    conv = torch.nn.functional.conv2d
    assert torch.allclose(conv(image.repeat(1, 3, 1, 1), nine), conv(image, weight), atol=1e-5)


def test_grayscale_model_equals_rgb_model_on_replicated_input() -> None:
    torch.manual_seed(0)
    rgb = create_model("resnet18", in_channels=3, num_classes=4)
    _randomise(rgb, seed=4)
    state = rgb.state_dict()
    state["conv1.weight"] = adapt_first_conv(state["conv1.weight"], 1)
    gray = create_model("resnet18", in_channels=1, num_classes=4)
    gray.load_state_dict(state)
    rgb.eval(), gray.eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = gray(x)
        assert torch.isfinite(out).all() and out.abs().max() > 1e-3
        assert torch.allclose(out, rgb(x.repeat(1, 3, 1, 1)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_load_pretrained_adapts_first_conv(name: str, tmp_path: Path) -> None:
    rgb = create_model(name, in_channels=3, num_classes=4)
    _randomise(rgb, seed=5)
    path = _save(to_torchvision(rgb.state_dict()), tmp_path / "w.safetensors")
    gray = create_model(name, in_channels=1, num_classes=4)
    report = load_pretrained(gray, path, name, strict=True)
    assert len(report.adapted) == 1 and not report.missing
    rgb.eval(), gray.eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        out = gray(x)
        assert torch.isfinite(out).all() and out.abs().max() > 1e-3
        assert torch.allclose(out, rgb(x.repeat(1, 3, 1, 1)), atol=1e-5, rtol=1e-5)
