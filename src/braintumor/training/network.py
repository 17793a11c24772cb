"""Build the network of a run from its config, optionally initialised from weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from braintumor.config import ModelConfig
from braintumor.models import count_parameters, create_model, load_pretrained, model_info
from braintumor.training.checkpoint import CheckpointError, load_matching, load_weights


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
    ImageNet weights (``.pth``/``.pt``/``.safetensors`` without project metadata)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: init-from weights file not found")
    if p.suffix == ".safetensors" and p.with_suffix(".json").is_file():
        state, meta = load_weights(p)
        if meta.get("model", {}).get("name") not in (None, name):
            raise CheckpointError(f"{p}: holds a {meta['model']['name']!r} model, not {name!r}")
        report = load_matching(model, state)
        if not report["loaded"]:
            raise CheckpointError(f"{p}: no tensor matched the {name!r} model")
        return report
    result = load_pretrained(model, p, name)
    return {"loaded": list(result.loaded), "skipped": list(result.skipped), "missing": list(result.missing)}


def describe(model: nn.Module) -> dict[str, int]:
    """Parameter counts for reports."""
    return {"parameters": count_parameters(model), "trainable": count_parameters(model, trainable_only=True)}


def network_from_weights(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained network from ``.safetensors`` + ``.json`` metadata (no pickle)."""
    from braintumor.config import from_dict

    state, meta = load_weights(path)
    if "model" not in meta or "in_channels" not in meta:
        raise CheckpointError(f"{path}: metadata lacks 'model'/'in_channels'; not a braintumor checkpoint")
    cfg = from_dict(ModelConfig, {**meta["model"], "init_from": ""}, "model")
    n_out = cfg.out_channels if meta.get("task") == "segment" else len(meta.get("classes", []))
    net = build_network(cfg, int(meta["in_channels"]), n_out)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the {cfg.name!r} model ({exc})") from None
    return net.eval(), meta
