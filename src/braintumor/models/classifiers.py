"""Custom CNN classifiers for small (e.g. 128×128 grayscale) MRI slices.

Each is ``features`` (conv–BN–ReLU blocks with 2x2 max-pooling) -> ``pool`` (global average
pooling) -> ``classifier`` (dropout + linear). Input B×C×H×W float32 (any H, W ≥ 2**stages);
output B×num_classes logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from braintumor.models.registry import register_model


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SimpleCNN(nn.Module):
    """A plain CNN: stages of ``convs_per_stage`` conv–BN–ReLU layers, each stage ending in maxpool.

    Args:
        in_channels: input channels C.
        num_classes: output logits N.
        channels: output channels of each stage (one 2x2 max-pool per stage).
        convs_per_stage: conv–BN–ReLU layers per stage.
        dropout: dropout probability before the linear head.

    Shapes:
        input: B×C×H×W float32; output: B×N logits.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int],
        convs_per_stage: int = 1,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one stage width, e.g. (32, 64, 128)")
        layers: list[nn.Module] = []
        prev = in_channels
        for width in channels:
            for _ in range(convs_per_stage):
                layers += _conv_bn_relu(prev, width)
                prev = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(prev, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W -> B×num_classes logits."""
        out: torch.Tensor = self.classifier(self.pool(self.features(x)))
        return out


@register_model("cnn-small", task="classify", head="classifier")
def cnn_small(
    in_channels: int = 1,
    num_classes: int = 4,
    dropout: float = 0.3,
    channels: Sequence[int] = (32, 64, 128, 256),
) -> nn.Module:
    """Four conv–BN–ReLU–maxpool stages (32-64-128-256), GAP, dropout, linear.

    389,348 parameters at in_channels=1, num_classes=4 (128×128 input -> 8×8 before pooling).
    """
    return SimpleCNN(in_channels, num_classes, channels, convs_per_stage=1, dropout=dropout)


@register_model("cnn-deep", task="classify", head="classifier")
def cnn_deep(
    in_channels: int = 1,
    num_classes: int = 4,
    dropout: float = 0.5,
    channels: Sequence[int] = (32, 64, 128, 256, 512),
) -> nn.Module:
    """Five stages of two conv–BN–ReLU layers + maxpool (32…512, VGG-like), GAP, dropout, linear.

    4,715,684 parameters at in_channels=1, num_classes=4 (128×128 input -> 4×4 before pooling).
    """
    return SimpleCNN(in_channels, num_classes, channels, convs_per_stage=2, dropout=dropout)
