"""Build a network from its ``ModelConfig`` (optionally initialised from weights), or rebuild a trained
one from its weights file: the one place training, bundles and inference create networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from braintumor.config import ModelConfig
from braintumor.errors import ConfigError
from braintumor.models.card import ModelCard
from braintumor.models.pretrained import adapt_first_conv, load_pretrained
from braintumor.models.registry import count_parameters, create_model, list_models, model_info
from braintumor.models.weights import CheckpointError, load_matching, load_weights, read_card


def check_model(cfg: ModelConfig, task: str) -> None:
    """``cfg.name`` is a registered model made for ``task`` (``segment`` or ``classify``).

    Raises:
        ConfigError: an unknown name (the message lists the valid ones), or a model of the other task.
    """
    info = model_info(cfg.name)
    if info.task != task:
        raise ConfigError(
            f"model.name={cfg.name!r} is a {info.task} model but train.task={task!r}; set model.name to "
            f"a {task} model: {', '.join(list_models(task=task))}"
        )


def build_network(cfg: ModelConfig, in_channels: int, n_outputs: int) -> nn.Module:
    """Create ``cfg.name`` with ``in_channels`` inputs and ``n_outputs`` mask channels or classes."""
    task = model_info(cfg.name).task
    out_arg = {"out_channels": n_outputs} if task == "segment" else {"num_classes": n_outputs}
    model = create_model(cfg.name, in_channels=in_channels, **out_arg, **cfg.kwargs)
    if cfg.init_from:
        init_weights(model, cfg.name, cfg.init_from)
    return model


def init_weights(model: nn.Module, name: str, path: str) -> dict[str, Any]:
    """Initialise from a project checkpoint (``.safetensors`` + ``.json``) or torchvision-layout
    ImageNet weights (``.pth``/``.pt``/``.safetensors`` without project metadata).

    A project checkpoint with other input channels (an LGG 3-channel U-Net for a 1-channel
    figshare one) has its first convolution adapted by :func:`adapt_first_conv`."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: init-from weights file not found")
    if p.suffix == ".safetensors" and p.with_suffix(".json").is_file():
        state, _ = load_weights(p)
        held = read_card(p).model.name
        if held != name:
            raise CheckpointError(f"{p}: holds a {held!r} model, not {name!r}")
        state, adapted = _adapt_input_conv(model, state)
        report = load_matching(model, state)
        report["adapted"] = adapted
        if not report["loaded"]:
            raise CheckpointError(f"{p}: no tensor matched the {name!r} model")
        return report
    result = load_pretrained(model, p, name)
    return {"loaded": list(result.loaded), "skipped": list(result.skipped), "missing": list(result.missing)}


def _adapt_input_conv(
    model: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Adapt the model's first convolution weight in ``state`` when only its input channels differ."""
    first, target = next(((k, v) for k, v in model.state_dict().items() if v.ndim == 4), ("", None))
    source = state.get(first)
    if target is None or source is None or source.ndim != 4 or source.shape[1] == target.shape[1]:
        return state, []
    adapted = adapt_first_conv(source, int(target.shape[1]))
    return ({**state, first: adapted}, [first]) if adapted.shape == target.shape else (state, [])


def describe(model: nn.Module) -> dict[str, int]:
    """Parameter counts for reports."""
    return {"parameters": count_parameters(model), "trainable": count_parameters(model, trainable_only=True)}


def network_from_weights(path: str | Path) -> tuple[nn.Module, ModelCard]:
    """Rebuild a trained network from ``.safetensors`` + its model card (no pickle)."""
    card = read_card(path)
    state, _ = load_weights(path)
    net = build_network(card.model, card.in_channels, card.n_outputs)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the {card.model.name!r} model ({exc})") from None
    return net.eval(), card
