"""ImageNet-style classification backbones: ResNet / DenseNet from MONAI, VGG written here.

Every architecture matches its torchvision counterpart layer for layer, so ImageNet weights in
torchvision's key layout load through :func:`braintumor.models.pretrained.load_pretrained`:

- ResNet: ``monai.networks.nets.ResNet`` with 1x1-conv+BN shortcuts without bias (torchvision's
  layout, key names identical) and the standard stride-2 7x7 stem. MONAI's own 2D default is a
  stride-1 stem, ~4x the FLOPs; pass ``stem_stride=1`` to get it.
- DenseNet-121: ``monai.networks.nets.DenseNet121`` (key names differ, see ``pretrained.py``).
- VGG-16/19 (optionally with BatchNorm): torchvision's ``features`` / ``avgpool`` /
  ``classifier`` indices; ``classifier_width`` shrinks the two hidden linear layers.

Narrow variants for a CPU budget keep every layer and scale the channels: ResNet ``width``, VGG
``conv_width`` (standard 64), DenseNet ``growth_rate`` / ``init_features`` (standard 32 / 64).

At in_channels=3, num_classes=1000 the parameter counts equal torchvision's exactly (ResNet-18
11,689,512; ResNet-50 25,557,032; DenseNet-121 7,978,856; VGG-16 138,357,544), tested.

Input B×C×H×W float32 (H, W ≥ 32); output B×num_classes logits.
"""

from __future__ import annotations

import torch
from monai.networks import nets
from torch import nn

from braintumor.models.registry import register_model

# --------------------------------------------------------------------------- ResNet / DenseNet


def _resnet(
    block: str, layers: list[int], in_channels: int, num_classes: int, stem_stride: int, width: int
) -> nn.Module:
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2 (standard ResNet: 2), got {stem_stride}")
    if width < 8:
        raise ValueError(f"width must be at least 8 (standard ResNet: 64), got {width}")
    return nets.ResNet(
        block=block,
        layers=layers,
        block_inplanes=[width, 2 * width, 4 * width, 8 * width],
        spatial_dims=2,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=stem_stride,
        shortcut_type="B",
        bias_downsample=False,
        num_classes=num_classes,
    )


@register_model("resnet18", task="classify", head="fc")
def resnet18(in_channels: int = 1, num_classes: int = 4, stem_stride: int = 2, width: int = 64) -> nn.Module:
    """ResNet-18 (MONAI, torchvision layout): 11.17 M parameters at in=1, 4 classes.

    ``width`` is the first stage's channel count (stages: w, 2w, 4w, 8w); below 64 the network
    is a slimmer ResNet (about (w/64)² of the parameters) that ImageNet weights no longer fit.
    """
    return _resnet("basic", [2, 2, 2, 2], in_channels, num_classes, stem_stride, width)


@register_model("resnet34", task="classify", head="fc")
def resnet34(in_channels: int = 1, num_classes: int = 4, stem_stride: int = 2, width: int = 64) -> nn.Module:
    """ResNet-34 (MONAI, torchvision layout): 21.28 M parameters at in=1, 4 classes.

    ``width`` is the first stage's channel count (stages: w, 2w, 4w, 8w); below 64 the network
    is a slimmer ResNet (about (w/64)² of the parameters) that ImageNet weights no longer fit.
    """
    return _resnet("basic", [3, 4, 6, 3], in_channels, num_classes, stem_stride, width)


@register_model("resnet50", task="classify", head="fc")
def resnet50(in_channels: int = 1, num_classes: int = 4, stem_stride: int = 2, width: int = 64) -> nn.Module:
    """ResNet-50 (MONAI, torchvision layout): 23.51 M parameters at in=1, 4 classes.

    ``width`` is the first stage's channel count (stages: w, 2w, 4w, 8w); below 64 the network
    is a slimmer ResNet (about (w/64)² of the parameters) that ImageNet weights no longer fit.
    """
    return _resnet("bottleneck", [3, 4, 6, 3], in_channels, num_classes, stem_stride, width)


@register_model("densenet121", task="classify", head="class_layers")
def densenet121(
    in_channels: int = 1,
    num_classes: int = 4,
    dropout: float = 0.0,
    growth_rate: int = 32,
    init_features: int = 64,
) -> nn.Module:
    """DenseNet-121 (MONAI): 6.95 M parameters at in=1, 4 classes.

    ``dropout`` is applied after every dense layer (MONAI's ``dropout_prob``). ``growth_rate`` and
    ``init_features`` (standard: 32 and 64) narrow the network while keeping its 121 layers.
    """
    return nets.DenseNet121(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=num_classes,
        dropout_prob=dropout,
        growth_rate=growth_rate,
        init_features=init_features,
    )


# --------------------------------------------------------------------------- VGG

# torchvision's configurations "D" (VGG-16) and "E" (VGG-19): conv widths, "M" = 2x2 max-pool
_VGG_CFGS: dict[str, list[int | str]] = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
        *(512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
    ],
}


def _vgg_features(cfg: list[int | str], in_channels: int, batch_norm: bool, conv_width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        width = int(v) * conv_width // 64
        layers.append(nn.Conv2d(prev, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        prev = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG with torchvision's module layout (``features``, ``avgpool``, ``classifier``).

    Args:
        cfg: layer plan, ints are conv widths, ``"M"`` a 2x2 max-pool.
        in_channels: input channels C.
        num_classes: output logits N.
        batch_norm: insert BatchNorm after every conv (the ``-bn`` variants).
        classifier_width: width of the two hidden linear layers (torchvision: 4096).
        dropout: dropout probability in the classifier.
        conv_width: the first stage's conv width; every stage scales with it (torchvision: 64,
            stages 64-128-256-512-512).

    Shapes:
        input: B×C×H×W float32 (H, W ≥ 32); output: B×N logits.
    """

    def __init__(
        self,
        cfg: list[int | str],
        in_channels: int = 3,
        num_classes: int = 1000,
        batch_norm: bool = False,
        classifier_width: int = 4096,
        dropout: float = 0.5,
        conv_width: int = 64,
    ) -> None:
        super().__init__()
        if conv_width < 8:
            raise ValueError(f"conv_width must be at least 8 (standard VGG: 64), got {conv_width}")
        self.features = _vgg_features(cfg, in_channels, batch_norm, conv_width)
        last_conv = [m for m in self.features if isinstance(m, nn.Conv2d)][-1]
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        w = classifier_width
        self.classifier = nn.Sequential(
            nn.Linear(last_conv.out_channels * 7 * 7, w),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(w, w),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(w, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W -> B×num_classes logits."""
        x = self.avgpool(self.features(x))
        out: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return out


def _vgg(
    cfg: str,
    batch_norm: bool,
    in_channels: int,
    num_classes: int,
    width: int,
    dropout: float,
    conv_width: int,
) -> nn.Module:
    return VGG(_VGG_CFGS[cfg], in_channels, num_classes, batch_norm, width, dropout, conv_width)


@register_model("vgg16", task="classify", head="classifier")
def vgg16(
    in_channels: int = 1,
    num_classes: int = 4,
    classifier_width: int = 4096,
    dropout: float = 0.5,
    conv_width: int = 64,
) -> nn.Module:
    """VGG-16 (torchvision layout): 134.28 M parameters at in=1, 4 classes, width 4096."""
    return _vgg("D", False, in_channels, num_classes, classifier_width, dropout, conv_width)


@register_model("vgg16-bn", task="classify", head="classifier")
def vgg16_bn(
    in_channels: int = 1,
    num_classes: int = 4,
    classifier_width: int = 4096,
    dropout: float = 0.5,
    conv_width: int = 64,
) -> nn.Module:
    """VGG-16 with BatchNorm (torchvision layout): 134.28 M parameters at in=1, 4 classes."""
    return _vgg("D", True, in_channels, num_classes, classifier_width, dropout, conv_width)


@register_model("vgg19", task="classify", head="classifier")
def vgg19(
    in_channels: int = 1,
    num_classes: int = 4,
    classifier_width: int = 4096,
    dropout: float = 0.5,
    conv_width: int = 64,
) -> nn.Module:
    """VGG-19 (torchvision layout): 139.59 M parameters at in=1, 4 classes, width 4096."""
    return _vgg("E", False, in_channels, num_classes, classifier_width, dropout, conv_width)


@register_model("vgg19-bn", task="classify", head="classifier")
def vgg19_bn(
    in_channels: int = 1,
    num_classes: int = 4,
    classifier_width: int = 4096,
    dropout: float = 0.5,
    conv_width: int = 64,
) -> nn.Module:
    """VGG-19 with BatchNorm (torchvision layout): 139.60 M parameters at in=1, 4 classes."""
    return _vgg("E", True, in_channels, num_classes, classifier_width, dropout, conv_width)
