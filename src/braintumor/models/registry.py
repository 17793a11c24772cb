"""The model registry: ``@register_model`` + ``create_model(name, **kwargs)`` + ``list_models``.

Every network of the project is a factory function registered by name with its task
(``"segment"`` or ``"classify"``) and, for classifiers, the attribute name of its head (used by
:func:`braintumor.models.heads.freeze_backbone` and by pretrained loading).

Example:
    >>> from braintumor.models import create_model, list_models
    >>> "resnet18" in list_models(task="classify")
    True
    >>> net = create_model("cnn-small", in_channels=1, num_classes=4)
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from braintumor.config import TASKS
from braintumor.errors import ConfigError
from braintumor.registry import Registry

Task = Literal["segment", "classify"]
ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model", "`braintumor models` lists them with their tasks")


@dataclass(frozen=True)
class ModelInfo:
    """Metadata recorded by :func:`register_model`.

    Attributes:
        name: registered name, e.g. ``"resnet18"``.
        task: ``"segment"`` (output B×out_channels×H×W logits) or ``"classify"`` (B×num_classes).
        head: dotted attribute name of the classification head (``"fc"``, ``"classifier"``…),
            ``None`` when the model has no separable head.
        module: Python module that defines the factory.
    """

    name: str
    task: Task
    head: str | None
    module: str


_INFO: dict[str, ModelInfo] = {}


class ModelArgumentError(ConfigError, TypeError):
    """A model factory was called with arguments it does not accept."""


def register_model(
    name: str, *, task: Task, head: str | None = None
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering a model factory under ``name``.

    Args:
        name: unique registry name (kebab-case, e.g. ``"cnn-small"``).
        task: ``"segment"`` or ``"classify"``.
        head: attribute name of the classification head, if any.

    Returns:
        The decorator; it returns the factory unchanged.
    """
    if task not in TASKS:
        raise ValueError(f"register_model({name!r}): task must be one of {TASKS}, got {task!r}")

    def decorator(factory: ModelFactory) -> ModelFactory:
        MODELS.register(name)(factory)
        _INFO[name] = ModelInfo(name=name, task=task, head=head, module=factory.__module__)
        return factory

    return decorator


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model; unknown names raise an error listing the valid ones."""
    MODELS.get(name)  # raises UnknownNameError with the valid names
    return _INFO[name]


def accepted_arguments(name: str) -> dict[str, Any]:
    """Keyword arguments accepted by model ``name``, mapped to their defaults."""
    signature = inspect.signature(MODELS.get(name))
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments ``kwargs``.

    Args:
        name: a name from :func:`list_models`.
        **kwargs: factory arguments, e.g. ``in_channels=1, num_classes=4``.

    Returns:
        The freshly initialised ``nn.Module`` (training mode, CPU, float32).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        ModelArgumentError: an argument is not accepted by this model (the message lists the
            accepted ones with their defaults).
    """
    factory = MODELS.get(name)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        accepted = ", ".join(f"{k}={v!r}" for k, v in accepted_arguments(name).items())
        raise ModelArgumentError(
            f"model {name!r} got invalid arguments {sorted(kwargs)}: {err}; "
            f"accepted arguments (with defaults): {accepted}"
        ) from None
    return factory(**kwargs)


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Sorted registered model names matching a shell-style ``pattern`` and, if given, a ``task``.

    Args:
        pattern: e.g. ``"resnet*"``.
        task: ``"segment"``, ``"classify"`` or ``None`` for both.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    return [
        n for n in MODELS.names() if fnmatch.fnmatch(n, pattern) and (task is None or _INFO[n].task == task)
    ]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
