"""The model card: what a trained network is, saved as ``<weights>.json`` beside its weights.

A card names the task (``segment`` or ``classify``), the registered network and its arguments
(:class:`~braintumor.config.ModelConfig`), the input channels, the classes, the
:class:`~braintumor.config.Preprocessing` its inputs went through, and how it was chosen
(``best_score`` of ``monitor``). :meth:`ModelCard.from_dict` validates a record read from disk
(a weights file, a bundle) and names the file and the field in its error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from braintumor.config import NORMALIZATIONS, TASKS, ModelConfig, Preprocessing, from_dict, to_dict
from braintumor.errors import BrainTumorError, ConfigError


class ModelCardError(BrainTumorError):
    """A model's metadata is missing a field or holds a wrong one."""


@dataclass(frozen=True)
class ModelCard:
    """Typed metadata of a trained network (see the module doc).

    Attributes:
        stored_dtype: how a bundle stores the weights (``float32``, ``float16``, ``float16+float32``);
            ``float32_tensors`` lists tensors kept in float32 beside float16 ones.
    """

    task: str
    model: ModelConfig
    in_channels: int
    preprocessing: Preprocessing
    classes: tuple[str, ...] = ()
    best_score: float | None = None
    monitor: str | None = None
    package_version: str = ""
    stored_dtype: str | None = None
    float32_tensors: tuple[str, ...] = field(default=())

    @property
    def image_channels(self) -> int:
        """Channels read from one slice: ``in_channels`` less any ``roi_coords`` channels, divided
        among the slices stacked with ``context_slices``."""
        return (self.in_channels - self.preprocessing.coord_channels) // self.preprocessing.stacked_slices

    @property
    def n_outputs(self) -> int:
        """Output channels of the network: mask channels, or one logit per class."""
        return self.model.out_channels if self.task == "segment" else len(self.classes)

    @property
    def is_roi_classifier(self) -> bool:
        return self.task == "classify" and self.preprocessing.roi_expansion is not None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "task": self.task,
            "model": to_dict(self.model),
            "in_channels": self.in_channels,
            "classes": list(self.classes),
            "preprocessing": self.preprocessing.to_dict(),
            "best_score": self.best_score,
            "monitor": self.monitor,
            "package_version": self.package_version,
        }
        if self.stored_dtype is not None:
            record["stored_dtype"] = self.stored_dtype
        if self.float32_tensors:
            record["float32_tensors"] = list(self.float32_tensors)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str) -> ModelCard:
        """Validate and read a card record (``where``: the file it came from, for messages).

        Raises:
            ModelCardError: a missing or wrong field, an unregistered model, or a model of
                another task.
        """
        from braintumor.models.registry import model_info

        if not isinstance(record, Mapping):
            raise ModelCardError(f"{where}: model metadata must be a JSON object")
        task = record.get("task")
        if task not in TASKS:
            raise ModelCardError(f"{where}: 'task' is {task!r}; expected 'segment' or 'classify'")
        model = record.get("model")
        if not isinstance(model, Mapping) or not isinstance(model.get("name"), str):
            raise ModelCardError(f"{where}: 'model' must be an object with a 'name'")
        try:
            info = model_info(model["name"])
            config = from_dict(ModelConfig, {**model, "init_from": ""}, "model")
        except (ConfigError, TypeError) as exc:
            raise ModelCardError(f"{where}: {exc}") from None
        if info.task != task:
            raise ModelCardError(f"{where}: model {model['name']!r} is a {info.task} model, not {task}")
        in_channels = record.get("in_channels")
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise ModelCardError(f"{where}: 'in_channels'={in_channels!r}; expected a positive integer")
        classes = record.get("classes", [])
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ModelCardError(f"{where}: 'classes' must be a list of names")
        if task == "classify" and len(classes) < 2:
            raise ModelCardError(f"{where}: a classifier needs at least 2 'classes', got {classes}")
        card = cls(
            task=task,
            model=config,
            in_channels=in_channels,
            preprocessing=_preprocessing(record.get("preprocessing"), where),
            classes=tuple(classes),
            best_score=_score(record.get("best_score")),
            monitor=record.get("monitor"),
            package_version=str(record.get("package_version") or record.get("version") or ""),
            stored_dtype=record.get("stored_dtype"),
            float32_tensors=tuple(record.get("float32_tensors", ())),
        )
        if card.image_channels < 1:
            raise ModelCardError(
                f"{where}: 'in_channels'={in_channels} leaves no image channel beside roi_coords' 2"
            )
        stacked = card.preprocessing.stacked_slices
        if card.image_channels * stacked + card.preprocessing.coord_channels != in_channels:
            raise ModelCardError(
                f"{where}: 'in_channels'={in_channels} does not split into {stacked} stacked slices "
                f"(preprocessing.context_slices={card.preprocessing.context_slices})"
            )
        return card


def _score(value: Any) -> float | None:
    if value is None:
        return None
    score = float(value)
    return None if math.isnan(score) else score


def _preprocessing(prep: Any, where: str) -> Preprocessing:
    """A complete, valid preprocessing record as :class:`Preprocessing` (else ModelCardError)."""
    if not isinstance(prep, Mapping):
        raise ModelCardError(f"{where}: 'preprocessing' is missing or not an object")
    missing = [k for k in ("image_size", "channels", "normalization", "percentiles") if k not in prep]
    if missing:
        raise ModelCardError(f"{where}: preprocessing lacks {missing}")
    size, channels = prep["image_size"], prep["channels"]
    if not isinstance(size, int) or size < 8:
        raise ModelCardError(f"{where}: preprocessing.image_size={size!r}; expected an integer >= 8")
    if not isinstance(channels, int) or channels < 0:
        raise ModelCardError(f"{where}: preprocessing.channels={channels!r}; expected an integer >= 0")
    if prep["normalization"] not in NORMALIZATIONS:
        raise ModelCardError(
            f"{where}: preprocessing.normalization={prep['normalization']!r}; "
            f"expected one of {NORMALIZATIONS}"
        )
    pct = prep["percentiles"]
    if not (isinstance(pct, list | tuple) and len(pct) == 2 and all(isinstance(v, int | float) for v in pct)):
        raise ModelCardError(f"{where}: preprocessing.percentiles={pct!r}; expected [low, high]")
    expansion = prep.get("roi_expansion")
    if expansion is not None and (not isinstance(expansion, int | float) or expansion < 1):
        raise ModelCardError(f"{where}: preprocessing.roi_expansion={expansion!r}; expected None or >= 1")
    coords = prep.get("roi_coords", False)
    if not isinstance(coords, bool) or (coords and expansion is None):
        raise ModelCardError(
            f"{where}: preprocessing.roi_coords={coords!r}; expected a bool, true only with roi_expansion"
        )
    context = prep.get("context_slices", 0)
    valid = isinstance(context, int) and not isinstance(context, bool) and context >= 0
    if not valid or (context and expansion is not None):
        raise ModelCardError(
            f"{where}: preprocessing.context_slices={context!r}; expected an integer >= 0, 0 with "
            "roi_expansion"
        )
    return Preprocessing.from_dict(prep)
