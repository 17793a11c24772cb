"""Segmentation networks: the classic LGG U-Net (written here) and MONAI U-Net variants.

Every segmenter takes ``in_channels`` and ``out_channels``, works on 2D images
(``spatial_dims=2`` fixed), and returns **logits** of shape B×out_channels×H×W (float32); apply
``sigmoid`` (binary) or ``softmax`` (multi-class) outside the model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from monai.networks import nets
from torch import nn

from braintumor.models.registry import register_model

_DEFAULT_CHANNELS = (32, 64, 128, 256, 512)


def check_divisible(x: torch.Tensor, factor: int, model: str) -> None:
    """Raise a ValueError naming the padded size when H or W of ``x`` (B×C×H×W) is not a multiple.

    Skipped while tracing/compiling so that export with dynamic shapes is not blocked.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    if x.ndim != 4:
        raise ValueError(f"{model}: expected a B×C×H×W tensor, got shape {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % factor or w % factor:
        ph, pw = -(-h // factor) * factor, -(-w // factor) * factor
        raise ValueError(
            f"{model}: height and width must be divisible by {factor}; got {h}x{w}, pad to {ph}x{pw}"
        )


def _add_size_check(model: nn.Module, factor: int, name: str) -> nn.Module:
    """Attach a forward pre-hook that checks the input size (keeps the state-dict keys)."""

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        check_divisible(args[0], factor, name)

    model.register_forward_pre_hook(hook)
    return model


class UNet(nn.Module):
    """The U-Net of the LGG reference (mateuszbuda/brain-segmentation-pytorch), returning logits.

    Four encoder levels and a bottleneck, each two conv3x3(bias=False)–BatchNorm–ReLU; 2x2
    max-pooling down, 2x2 transposed convolutions up, skip concatenation, final 1x1 conv.
    Module names match the reference so its state dicts load with identical keys.
    With ``in_channels=3, out_channels=1, init_features=32``: 7,763,041 parameters.

    Args:
        in_channels: input channels C.
        out_channels: output channels K.
        init_features: channels of the first level F (doubled at every level, 16F at the bottom).

    Shapes:
        input: B×C×H×W float32 with H and W divisible by 16; output: B×K×H×W logits.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, init_features: int = 32):
        super().__init__()
        f = init_features
        self.encoder1 = self._block(in_channels, f, "enc1")
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder2 = self._block(f, f * 2, "enc2")
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder3 = self._block(f * 2, f * 4, "enc3")
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder4 = self._block(f * 4, f * 8, "enc4")
        self.pool4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bottleneck = self._block(f * 8, f * 16, "bottleneck")
        self.upconv4 = nn.ConvTranspose2d(f * 16, f * 8, kernel_size=2, stride=2)
        self.decoder4 = self._block(f * 16, f * 8, "dec4")
        self.upconv3 = nn.ConvTranspose2d(f * 8, f * 4, kernel_size=2, stride=2)
        self.decoder3 = self._block(f * 8, f * 4, "dec3")
        self.upconv2 = nn.ConvTranspose2d(f * 4, f * 2, kernel_size=2, stride=2)
        self.decoder2 = self._block(f * 4, f * 2, "dec2")
        self.upconv1 = nn.ConvTranspose2d(f * 2, f, kernel_size=2, stride=2)
        self.decoder1 = self._block(f * 2, f, "dec1")
        self.conv = nn.Conv2d(f, out_channels, kernel_size=1)

    @staticmethod
    def _block(in_channels: int, features: int, name: str) -> nn.Sequential:
        """Two conv3x3(bias=False)–BatchNorm–ReLU layers: B×in×H×W -> B×features×H×W."""
        return nn.Sequential(
            OrderedDict(
                [
                    (f"{name}conv1", nn.Conv2d(in_channels, features, 3, padding=1, bias=False)),
                    (f"{name}norm1", nn.BatchNorm2d(features)),
                    (f"{name}relu1", nn.ReLU(inplace=True)),
                    (f"{name}conv2", nn.Conv2d(features, features, 3, padding=1, bias=False)),
                    (f"{name}norm2", nn.BatchNorm2d(features)),
                    (f"{name}relu2", nn.ReLU(inplace=True)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×H×W (H, W divisible by 16) -> B×K×H×W logits."""
        check_divisible(x, 16, "unet")
        enc1 = self.encoder1(x)
        enc2 = self.encoder2(self.pool1(enc1))
        enc3 = self.encoder3(self.pool2(enc2))
        enc4 = self.encoder4(self.pool3(enc3))
        bottleneck = self.bottleneck(self.pool4(enc4))
        dec4 = self.decoder4(torch.cat((self.upconv4(bottleneck), enc4), dim=1))
        dec3 = self.decoder3(torch.cat((self.upconv3(dec4), enc3), dim=1))
        dec2 = self.decoder2(torch.cat((self.upconv2(dec3), enc2), dim=1))
        dec1 = self.decoder1(torch.cat((self.upconv1(dec2), enc1), dim=1))
        out: torch.Tensor = self.conv(dec1)
        return out


@register_model("unet", task="segment", head="conv")
def unet(in_channels: int = 3, out_channels: int = 1, init_features: int = 32) -> nn.Module:
    """Classic LGG U-Net (7.76 M parameters at in=3, out=1, F=32); H, W divisible by 16."""
    return UNet(in_channels, out_channels, init_features)


@register_model("monai-unet", task="segment")
def monai_unet(
    in_channels: int = 3,
    out_channels: int = 1,
    channels: Sequence[int] = _DEFAULT_CHANNELS,
    num_res_units: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI residual U-Net (``monai.networks.nets.UNet``), stride 2 at every level.

    6,495,868 parameters at in=3, out=1 with the default channels (32, 64, 128, 256, 512).

    Input B×C×H×W with H, W divisible by 2**(len(channels)-1); output B×K×H×W logits.
    """
    strides = (2,) * (len(channels) - 1)
    net = nets.UNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=strides,
        num_res_units=num_res_units,
        norm=norm,
        dropout=dropout,
    )
    return _add_size_check(net, 2 ** len(strides), "monai-unet")


@register_model("attention-unet", task="segment")
def attention_unet(
    in_channels: int = 3,
    out_channels: int = 1,
    channels: Sequence[int] = _DEFAULT_CHANNELS,
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI Attention U-Net (``monai.networks.nets.AttentionUnet``), stride 2 at every level.

    7,940,321 parameters at in=3, out=1 with the default channels (32, 64, 128, 256, 512).

    Input B×C×H×W with H, W divisible by 2**(len(channels)-1); output B×K×H×W logits.
    """
    strides = (2,) * (len(channels) - 1)
    net = nets.AttentionUnet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(channels),
        strides=strides,
        dropout=dropout,
    )
    return _add_size_check(net, 2 ** len(strides), "attention-unet")


@register_model("basic-unet", task="segment")
def basic_unet(
    in_channels: int = 3,
    out_channels: int = 1,
    features: Sequence[int] = (32, 32, 64, 128, 256, 32),
    dropout: float = 0.0,
    upsample: str = "deconv",
) -> nn.Module:
    """MONAI BasicUNet (``monai.networks.nets.BasicUNet``): 4 downsamplings, 6 feature sizes.

    1,979,009 parameters at in=3, out=1 with the default features.

    Input B×C×H×W (odd sizes are padded inside the decoder); output B×K×H×W logits.
    """
    return nets.BasicUNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        features=tuple(features),
        dropout=dropout,
        upsample=upsample,
    )


@register_model("dynunet", task="segment")
def dynunet(
    in_channels: int = 3,
    out_channels: int = 1,
    filters: Sequence[int] | None = None,
    res_block: bool = False,
    dropout: float | None = None,
) -> nn.Module:
    """MONAI DynUNet in the nnU-Net style: kernels 3, strides [1, 2, 2, 2, 2], no deep supervision.

    ``filters=None`` gives MONAI's default (32, 64, 128, 256, 512): 7,762,561 parameters at
    in=3, out=1. Input B×C×H×W with H, W
    divisible by 16; output B×K×H×W logits.
    """
    strides = [1, 2, 2, 2, 2]
    net = nets.DynUNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=[3] * len(strides),
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=None if filters is None else list(filters),
        dropout=dropout,
        deep_supervision=False,
        res_block=res_block,
    )
    return _add_size_check(net, 16, "dynunet")
