"""Load ImageNet weights saved in torchvision's key layout into the registered backbones.

Files are read without unpickling arbitrary objects: ``.safetensors`` through
``safetensors.torch.load_file``, ``.pth`` / ``.pt`` / ``.bin`` through
``torch.load(weights_only=True)``. Keys are renamed to the MONAI layout, a 3-channel first conv
is adapted to the model's input channels (:func:`adapt_first_conv`) and a classification head of
another shape (new ``num_classes``) is skipped. Nothing is downloaded.

Example:
    >>> model = create_model("resnet18", in_channels=1, num_classes=4)
    >>> report = load_pretrained(model, "weights/resnet18-imagenet.safetensors", "resnet18")
    >>> print(report.summary())
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from braintumor.errors import DataError

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Family:
    first_conv: str  # key of the first conv weight, in the model's (MONAI) layout
    head: str  # key prefix of the final classification layer, in the model's layout


_FAMILIES: dict[str, _Family] = {
    "resnet": _Family(first_conv="conv1.weight", head="fc."),
    "densenet": _Family(first_conv="features.conv0.weight", head="class_layers.out."),
    "vgg": _Family(first_conv="features.0.weight", head="classifier.6."),
}
SUPPORTED: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "densenet121")
SUPPORTED += ("vgg16", "vgg16-bn", "vgg19", "vgg19-bn")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")

# torchvision "features.denseblock1.denselayer1.norm1.weight" (and the legacy "norm.1" spelling)
# -> MONAI "features.denseblock1.denselayer1.layers.norm1.weight"
_DENSELAYER = re.compile(r"^(.*\.denselayer\d+)\.(norm|relu|conv)\.?([12])\.(.+)$")


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did.

    Attributes:
        path: the weights file.
        loaded: model keys that received a tensor from the file.
        adapted: loaded keys whose input channels were adapted (first conv).
        skipped: file keys (after renaming) not loaded, mapped to the reason.
        missing: model keys that kept their initial values.
    """

    path: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human-readable paragraph."""
        lines = [
            f"{self.path}: loaded {len(self.loaded)} tensors ({len(self.adapted)} adapted), "
            f"skipped {len(self.skipped)}, missing {len(self.missing)}"
        ]
        lines += [f"  skipped {k}: {why}" for k, why in self.skipped.items()]
        lines += [f"  missing {k}" for k in self.missing]
        return "\n".join(lines)


def _family(model_name: str) -> _Family:
    if model_name not in SUPPORTED:
        raise ValueError(
            f"no torchvision weight mapping for model {model_name!r}; supported: {', '.join(SUPPORTED)}"
        )
    return _FAMILIES[re.sub(r"\d.*$", "", model_name)]


def torchvision_to_monai_keys(state_dict: StateDict, model_name: str) -> StateDict:
    """Rename the keys of a torchvision state dict to this package's layout for ``model_name``.

    ResNet (MONAI, ``shortcut_type="B"``) and VGG keys are already identical to torchvision's.
    DenseNet-121: ``…denselayerN.norm1`` -> ``…denselayerN.layers.norm1`` (the legacy ``norm.1``
    spelling too) and ``classifier`` -> ``class_layers.out``.

    Args:
        state_dict: tensors keyed in torchvision's layout.
        model_name: a registered name from ``SUPPORTED``.

    Returns:
        A new dict with the same tensors under the model's key names.
    """
    _family(model_name)
    if not model_name.startswith("densenet"):
        return dict(state_dict)
    renamed: StateDict = {}
    for key, tensor in state_dict.items():
        match = _DENSELAYER.match(key)
        if match:
            prefix, kind, index, rest = match.groups()
            key = f"{prefix}.layers.{kind}{index}.{rest}"
        elif key.startswith("classifier."):
            key = "class_layers.out." + key.removeprefix("classifier.")
        renamed[key] = tensor
    return renamed


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-conv weight O×I×kh×kw (usually I=3, RGB) to ``in_channels`` inputs.

    - same channel count: returned unchanged;
    - one channel: sum over the input-channel axis, so a grayscale image gives the same output as
      the RGB model fed that image replicated to 3 channels;
    - a multiple of I (a 2.5D model's slices, each with the I channels): the weight tiled over
      the slices, scaled by I/in_channels, so each channel keeps its own filters and a volume of
      identical slices gives the source model's output;
    - otherwise: the channel mean repeated ``in_channels`` times, scaled by I/in_channels (the
      response to a constant image is preserved).

    Returns:
        O×in_channels×kh×kw tensor, same dtype as ``weight``.
    """
    if weight.ndim < 3:
        raise ValueError(f"expected a conv weight O×I×k…, got shape {tuple(weight.shape)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be positive, got {in_channels}")
    source = weight.shape[1]
    if in_channels == source:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    spatial = [1] * (weight.ndim - 2)
    if in_channels % source == 0:
        return weight.repeat(1, in_channels // source, *spatial) * (source / in_channels)
    return weight.mean(dim=1, keepdim=True).repeat(1, in_channels, *spatial) * (source / in_channels)


def read_state_dict(path: str | Path) -> StateDict:
    """Read tensors from a ``.safetensors`` or ``.pth``/``.pt``/``.bin`` file (no pickled code).

    A ``.pth`` holding ``{"state_dict": {...}}`` or ``{"model": {...}}`` is unwrapped and a
    DataParallel ``module.`` prefix is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "weights file not found; pass the path of a local state-dict file")
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise DataError(path, f"unknown weights format {suffix!r}; use {', '.join(WEIGHT_SUFFIXES)}")
    try:
        if suffix == ".safetensors":
            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # corrupt file or pickled non-tensor objects
        raise DataError(path, f"cannot read weights ({type(err).__name__}: {err})") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict of tensors, found {type(obj).__name__}")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(path, "the file holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def _match(
    key: str, tensor: torch.Tensor, target: torch.Tensor, family: _Family, report: LoadReport
) -> torch.Tensor | None:
    """The tensor to load for ``key`` (adapted if needed) or None, recording a skip reason."""
    adapt = key == family.first_conv and tensor.ndim == target.ndim == 4
    if adapt and tensor.shape[1] != target.shape[1]:
        tensor = adapt_first_conv(tensor, int(target.shape[1]))
        if tensor.shape == target.shape:
            report.adapted.append(key)
    if tensor.shape == target.shape:
        return tensor
    if key.startswith(family.head):
        report.skipped[key] = (
            f"classification head: file shape {tuple(tensor.shape)} != model shape "
            f"{tuple(target.shape)} (different num_classes); kept the new initialisation"
        )
    else:
        report.skipped[key] = f"shape mismatch: file {tuple(tensor.shape)} != model {tuple(target.shape)}"
    return None


def load_pretrained(model: nn.Module, path: str | Path, model_name: str, strict: bool = False) -> LoadReport:
    """Load torchvision-layout weights from ``path`` into ``model`` (built as ``model_name``).

    Args:
        model: a model from ``create_model(model_name, ...)``; changed in place.
        path: ``.safetensors`` or ``.pth``/``.pt`` state dict in torchvision's key layout.
        model_name: registered name (``resnet18``, ``densenet121``, ``vgg16``…).
        strict: raise if any model tensor outside the classification head stays unloaded.

    Returns:
        A :class:`LoadReport` (loaded, adapted, skipped-with-reason and missing keys).

    Raises:
        DataError: the file cannot be read, or none of its tensors fits the model (wrong
            ``model_name``?), or ``strict`` and part of the backbone is missing.
    """
    family = _family(model_name)
    source = torchvision_to_monai_keys(read_state_dict(path), model_name)
    target = model.state_dict()
    report = LoadReport(path=str(path))
    new_state: StateDict = {}
    for key, tensor in source.items():
        if key not in target:
            report.skipped[key] = f"not a {model_name} key (unexpected in this model)"
            continue
        matched = _match(key, tensor, target[key], family, report)
        if matched is not None:
            new_state[key] = matched.to(dtype=target[key].dtype)
            report.loaded.append(key)
    report.missing = [k for k in target if k not in new_state]
    if not report.loaded:
        raise DataError(path, f"no tensor fits model {model_name!r}; is it a {model_name} file?")
    backbone_missing = [k for k in report.missing if not k.startswith(family.head)]
    if strict and backbone_missing:
        raise DataError(path, f"{len(backbone_missing)} backbone tensors not loaded:\n{report.summary()}")
    model.load_state_dict(new_state, strict=False)
    return report
