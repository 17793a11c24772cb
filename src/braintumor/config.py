"""Frozen configuration dataclasses, loaded from and dumped to YAML.

An experiment config has three sections, ``data``, ``model`` and ``train``. Every value can be
overridden with ``section.key=value`` strings (the CLI's ``--set``), parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from braintumor.errors import ConfigError

C = TypeVar("C")

NORMALIZATIONS = ("percentile-volume", "percentile-image", "zscore-image", "minmax-image", "none")


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is preprocessed.

    Attributes:
        path: dataset root; empty means seeded phantoms (the embedded default).
        format: loader name or ``auto`` to detect it from the layout.
        image_size: square side the images are resized/padded to.
        channels: channels fed to the model; 0 keeps the dataset's own.
        normalization: one of ``NORMALIZATIONS``; ``percentile-volume`` rescales each patient's
            stack between its ``percentiles`` (the LGG reference's 10th-99th).
        roi_expansion: crop the tumour box widened by this factor; ``None`` keeps whole slices.
        roi_coords: append two position channels to each ROI crop (the original slice's row and
            column at every pixel, -1..1), so the model sees where the tumour lies and how large
            the box is; the model then takes ``channels`` + 2 inputs. Needs ``roi_expansion``.
        folds: k of the patient-level k-fold; ``fold`` is the held-out one.
        val_fraction: share of the training patients kept for validation/early stopping.
        exclude_copies_of: another dataset whose images must not be trained or scored on here
            (e.g. the figshare slices inside Kaggle, before Kaggle pretraining for figshare folds);
            the copies found (``data/dedup.py``) are dropped and listed in ``excluded_copies.json``.
    """

    path: str = ""
    format: str = "auto"
    image_size: int = 128
    channels: int = 0
    normalization: str = "percentile-volume"
    percentiles: tuple[float, float] = (10.0, 99.0)
    roi_expansion: float | None = None
    roi_coords: bool = False
    folds: int = 5
    fold: int = 0
    val_fraction: float = 0.15
    seed: int = 42
    cache_dir: str = ""
    num_workers: int = 0
    phantom_count: int = 240
    phantom_size: int = 64
    exclude_copies_of: str = ""

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"data.normalization={self.normalization!r} is not one of {', '.join(NORMALIZATIONS)}"
            )
        if self.image_size < 8:
            raise ConfigError(f"data.image_size={self.image_size} is too small; use 32 or more")
        if not 0 <= self.fold < max(self.folds, 1):
            raise ConfigError(f"data.fold={self.fold} must lie in 0..{self.folds - 1}")
        if self.roi_coords and self.roi_expansion is None:
            raise ConfigError("data.roi_coords=true needs ROI crops; set data.roi_expansion (e.g. 1.5)")


@dataclass(frozen=True)
class ModelConfig:
    """Which registered network to build, and with what arguments."""

    name: str = "unet"
    in_channels: int = 1
    out_channels: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)
    init_from: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, precision and stopping.

    ``ema_decay`` > 0 keeps an exponential moving average of the weights (updated every step;
    Lightning's ``EMAWeightAveraging``): validation, checkpoint selection and the exported weights
    use the average, which steadies small-data training. ``missing_modality_prob`` > 0 replaces
    each channel but ``modality_reference_channel`` by that channel with this probability per
    training sample (the LGG release's encoding of a missing sequence; see
    :func:`braintumor.training.augment.replace_missing_modalities`).
    """

    task: str = "segment"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    loss: str = "dice-bce"
    precision: str = "bf16-mixed"
    channels_last: bool = True
    augment: bool = True
    tumour_fraction: float = 0.0
    early_stopping_patience: int = 0
    freeze_epochs: int = 0
    unfreeze_lr_factor: float = 0.1
    max_minutes: float = 0.0
    checkpoint_every_steps: int = 50
    ema_decay: float = 0.0
    missing_modality_prob: float = 0.0
    modality_reference_channel: int = 1
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay={self.ema_decay}; expected 0 (off) or a decay in (0, 1)")
        if not 0.0 <= self.missing_modality_prob <= 1.0:
            raise ConfigError(
                f"train.missing_modality_prob={self.missing_modality_prob}; expected a probability in [0, 1]"
            )


POSTPROCESS_SCOPES = ("slice", "patient")


@dataclass(frozen=True)
class EvalConfig:
    """How held-out data are scored: flip TTA and mask post-processing.

    ``postprocess_scope``: ``slice`` keeps each slice's largest 2D component; ``patient`` keeps the
    largest 3D component (26-connected) of each patient's stacked slices, as the LGG reference
    does. Hole filling is per slice either way. ``component_fraction`` < 1 keeps every component of
    at least that fraction of the largest one's size; ``threshold`` is the tumour probability above
    which a pixel is tumour. ``braintumor evaluate --tune`` chooses these on validation patients.
    """

    tta: bool = False
    threshold: float = 0.5
    largest_component: bool = False
    component_fraction: float = 1.0
    fill_holes: bool = False
    postprocess_scope: str = "slice"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"eval.threshold={self.threshold}; expected a probability in (0, 1)")
        if not 0.0 <= self.component_fraction <= 1.0:
            raise ConfigError(
                f"eval.component_fraction={self.component_fraction}; expected a fraction in [0, 1]"
            )
        if self.postprocess_scope not in POSTPROCESS_SCOPES:
            raise ConfigError(
                f"eval.postprocess_scope={self.postprocess_scope!r} is not one of "
                f"{', '.join(POSTPROCESS_SCOPES)}"
            )


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole resolved configuration of one run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML value to the field's annotated type (nested dataclasses included)."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, t, where) for v, t in zip(value, typing.get_args(annotation), strict=False))
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, str, bool) and not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type[C], values: dict[str, Any], where: str = "config") -> C:
    """Build dataclass ``cls`` from ``values``; unknown keys are an error listing valid ones."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - names
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a config dataclass (tuples become lists, for YAML)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a nested dict."""
    result = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=3")
        section, name = key.split(".", 1)
        result.setdefault(section, {})[name] = yaml.safe_load(raw)
    return result


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read an experiment YAML (or defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: expected a mapping with data/model/train sections")
    values = apply_overrides(values, overrides or [])
    return from_dict(ExperimentConfig, values, where=str(path or "config"))


def dump_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from braintumor.io_utils import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
