"""Freeze a backbone so that only the classification head trains (linear probing / warm-up).

Each registered classifier records its head's attribute name (``fc`` for the MONAI ResNets,
``class_layers`` for DenseNet-121, ``classifier`` for VGG and the custom CNNs).

Note: freezing sets ``requires_grad=False``; BatchNorm running statistics still update in
``train()`` mode. Call ``model.eval()`` on frozen parts (or the whole model) to keep them fixed.
"""

from __future__ import annotations

from torch import nn

from braintumor.models.registry import model_info


def head_name(model_name: str) -> str:
    """Attribute name of the classification head of registered model ``model_name``."""
    head = model_info(model_name).head
    if head is None:
        raise ValueError(
            f"model {model_name!r} has no separable head to keep trainable; "
            "freeze_backbone applies to classifiers such as resnet18, densenet121, vgg16, cnn-small"
        )
    return head


def freeze_backbone(model: nn.Module, model_name: str) -> list[str]:
    """Freeze every parameter of ``model`` except those of its classification head.

    Args:
        model: a model built by ``create_model(model_name, ...)``; changed in place.
        model_name: its registered name, used to find the head.

    Returns:
        Names of the parameters left trainable (those of the head).
    """
    head = head_name(model_name)
    try:
        model.get_submodule(head)
    except AttributeError:
        raise ValueError(f"model has no submodule {head!r}; was it built as {model_name!r}?") from None
    trainable = []
    for name, param in model.named_parameters():
        in_head = name.startswith(head + ".")
        param.requires_grad_(in_head)
        if in_head:
            trainable.append(name)
    return trainable


def unfreeze(model: nn.Module) -> None:
    """Make every parameter of ``model`` trainable again."""
    for param in model.parameters():
        param.requires_grad_(True)
