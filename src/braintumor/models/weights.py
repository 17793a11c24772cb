"""Model weights as ``.safetensors`` + JSON metadata; loading never unpickles code.

Training writes them (``checkpoints/best``), bundles copy them and every reader rebuilds a network
from them (:func:`braintumor.models.network.network_from_weights`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from braintumor import __version__
from braintumor.errors import BrainTumorError
from braintumor.io_utils import atomic_write, atomic_write_json
from braintumor.models.card import ModelCard, ModelCardError


class CheckpointError(BrainTumorError):
    """A weights file or its metadata is missing, unreadable or does not fit the model."""


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU tensors, each with its own storage: safetensors refuses tensors that share memory (a
    module registered under two names, as MONAI's DynUNet does with its skip layers)."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        if ptr is not None and ptr in seen:
            tensor = tensor.clone()
        elif ptr is not None:
            seen.add(ptr)
        out[key] = tensor
    return out


def save_weights(model: nn.Module, path: str | Path, card: ModelCard) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json`` (the model card), atomically."""
    stem = Path(path).with_suffix("")
    state = _unshared(model.state_dict())
    weights = stem.with_suffix(".safetensors")
    atomic_write(weights, lambda tmp: save_file(state, str(tmp)))
    atomic_write_json(stem.with_suffix(".json"), replace(card, package_version=__version__).to_dict())
    return weights


def read_card(path: str | Path) -> ModelCard:
    """The model card beside a weights file (``<weights>.json``).

    Raises:
        CheckpointError: no card, unreadable JSON, or not a valid card (the message names the field).
    """
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise CheckpointError(f"{meta_path}: model card not found beside the weights")
    try:
        return ModelCard.from_dict(json.loads(meta_path.read_text()), str(meta_path))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: model card is not valid JSON ({exc})") from None
    except ModelCardError as exc:
        raise CheckpointError(str(exc)) from None


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a ``.safetensors`` file and the ``.json`` metadata beside it."""
    weights = Path(path).with_suffix(".safetensors")
    meta_path = weights.with_suffix(".json")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file not found")
    try:
        state = load_file(str(weights))
    except Exception as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: metadata is not valid JSON ({exc})") from None
    return state, meta


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Copy every tensor whose name and shape match; report what was loaded and skipped."""
    own = model.state_dict()
    loaded, skipped = [], []
    for key, value in state.items():
        if key in own and own[key].shape == value.shape:
            own[key] = value
            loaded.append(key)
        else:
            skipped.append(key)
    model.load_state_dict(own)
    missing = [k for k in own if k not in state]
    return {"loaded": loaded, "skipped": skipped, "missing": missing}
