"""Frozen configuration dataclasses, loaded from and dumped to YAML.

An experiment config has three sections, ``data``, ``model`` and ``train``. Every value can be
overridden with ``section.key=value`` strings (the CLI's ``--set``), parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from braintumor.errors import ConfigError

C = TypeVar("C")

NORMALIZATIONS = (
    "percentile-volume", "percentile-image", "zscore-volume", "zscore-nonzero-image", "zscore-image",
    "minmax-image", "none",
)  # fmt: skip
# a volume-wide rule given one separate image applies the same rule to that image alone
PER_IMAGE_FALLBACK = {"percentile-volume": "percentile-image", "zscore-volume": "zscore-nonzero-image"}
TASKS = ("segment", "classify")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "plateau", "none")
# Lightning's precision names (the short aliases "32", "16" and "bf16" are left out: one spelling each),
# and "auto": bf16 where the hardware has it, else float32 (`runtime.precision.training_precision`)
PRECISIONS = ("auto", "bf16-mixed", "32-true", "16-mixed", "bf16-true", "16-true", "64-true")
# the names `braintumor.training.losses.LOSSES` registers (a test holds the two equal)
LOSS_NAMES = ("dice", "dice-bce", "dice-bce-batch", "tversky-bce", "focal", "ce", "ce-smooth")
POSTPROCESS_SCOPES = ("slice", "patient")
# how a dataset is split into folds (`braintumor.data.splits.METHODS`; a test holds the two equal)
SPLIT_METHODS = ("auto", "official", "patient-kfold", "image-kfold", "predefined", "site", "all")
COORD_CHANNELS = 2  # roi_coords' row and column position channels of a ROI crop
MAX_CONTEXT_SLICES = 3  # 2.5D neighbours on each side of a slice
IMAGE_SIZES = (8, 4096)  # smallest and largest square side, in pixels
SEED_LIMIT = 2**32  # seeds lie in 0 .. 2**32 - 1 (numpy's range)


def one_of(names: tuple[str, ...]) -> str:
    """What a setting that takes a name expects: ``one of a, b, c``."""
    return f"one of {', '.join(names)}"


def check_fields(section: str, obj: object, checks: dict[str, tuple[bool, str]]) -> None:
    """Raise on the first field whose check fails, naming it, its value and what was expected.

    Args:
        section: the config section (``data``, ``train``...), for the message.
        obj: the config holding the fields.
        checks: field name -> (value is valid, what is expected), e.g.
            ``{"epochs": (self.epochs >= 1, "a whole number >= 1")}``.

    Raises:
        ConfigError: ``train.epochs=-1; expected a whole number >= 1``.
    """
    for name, (ok, expected) in checks.items():
        if not ok:
            raise ConfigError(f"{section}.{name}={getattr(obj, name)!r}; expected {expected}")


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is preprocessed.

    Attributes:
        path: dataset root; empty means seeded phantoms (the embedded default).
        format: loader name or ``auto`` to detect it from the layout.
        image_size: square side the images are resized/padded to.
        channels: channels fed to the model; 0 keeps the dataset's own.
        normalization: one of ``NORMALIZATIONS``; ``percentile-volume`` rescales each patient's
            stack between its ``percentiles`` (the LGG reference's 10th-99th); ``zscore-volume``
            standardises the stack's non-zero voxels per channel (nnU-Net's MRI rule).
        roi_expansion: crop the tumour box widened by this factor; ``None`` keeps whole slices.
        roi_coords: append two position channels to each ROI crop (the original slice's row and
            column at every pixel, -1..1), so the model sees where the tumour lies and how large
            the box is; the model then takes ``channels`` + 2 inputs. Needs ``roi_expansion``.
        context_slices: 2.5D input: each slice goes in with its ``k`` neighbours on either side
            (same patient, in slice order; the end slice repeats past a volume's ends), so the
            model takes ``channels`` × (2k + 1) inputs. Whole slices only (no ``roi_expansion``).
        folds: k of the patient-level k-fold; ``fold`` is the held-out one.
        split: how folds are made: ``auto`` (official folds when the dataset has them, else
            patient-level k-fold, the predefined Training/Testing split for Kaggle folders),
            ``patient-kfold``, ``official``, ``image-kfold``, ``predefined``, ``site`` (leave one
            site out: LGG's TCGA institutions CS, DU, EZ, FG, HT, fold f testing the f-th), or
            ``all`` (one fold training on every patient, none held out: the model to ship once a
            CV has measured its recipe; with ``val_fraction=0`` the last epoch's weights).
        val_fraction: share of the training patients kept for validation/early stopping.
        exclude_copies_of: another dataset whose images must not be trained or scored on here
            (e.g. the figshare slices inside Kaggle, before Kaggle pretraining for figshare folds);
            the copies found (``data/dedup.py``) are dropped and listed in ``excluded_copies.json``.
        exclude_copies_fold: -1 drops the copies of every image of ``exclude_copies_of``; ``k`` only
            those of the test patients of its fold ``k`` (its folds as ``braintumor cv`` makes them
            with this ``folds`` and ``seed``: the official ones when it has them), so that a model
            scored on that fold (a gate, a pretrained start) keeps the copies of the other folds.
    """

    path: str = ""
    format: str = "auto"
    image_size: int = 128
    channels: int = 0
    normalization: str = "percentile-volume"
    percentiles: tuple[float, float] = (10.0, 99.0)
    roi_expansion: float | None = None
    roi_coords: bool = False
    context_slices: int = 0
    folds: int = 5
    fold: int = 0
    split: str = "auto"
    val_fraction: float = 0.15
    seed: int = 42
    cache_dir: str = ""
    num_workers: int = 0
    phantom_count: int = 240
    phantom_size: int = 64
    exclude_copies_of: str = ""
    exclude_copies_fold: int = -1

    def __post_init__(self) -> None:
        low, high = self.percentiles if len(self.percentiles) == 2 else (math.nan, math.nan)
        check_fields("data", self, {
            "image_size": (IMAGE_SIZES[0] <= self.image_size <= IMAGE_SIZES[1],
                           f"a side of {IMAGE_SIZES[0]}..{IMAGE_SIZES[1]} pixels, e.g. 128"),
            "channels": (self.channels >= 0, "0 (the dataset's own) or a channel count"),
            "normalization": (self.normalization in NORMALIZATIONS, one_of(NORMALIZATIONS)),
            "percentiles": (0 <= low < high <= 100, "low < high, both in 0..100, e.g. [10, 99]"),
            "roi_expansion": (self.roi_expansion is None or self.roi_expansion >= 1,
                              "null (whole slices) or a factor >= 1 (1 = the tight tumour box)"),
            "context_slices": (0 <= self.context_slices <= MAX_CONTEXT_SLICES,
                               f"0 (2D) or 1..{MAX_CONTEXT_SLICES} neighbours on each side"),
            "folds": (self.folds >= 2, "2 or more (the k of the patient-level k-fold)"),
            "fold": (0 <= self.fold < self.folds, f"a fold in 0..{self.folds - 1}"),
            "split": (self.split in SPLIT_METHODS, one_of(SPLIT_METHODS)),
            "val_fraction": (0 <= self.val_fraction < 1, "a share of training patients in [0, 1), e.g. 0.15"),
            "seed": (0 <= self.seed < SEED_LIMIT, f"a seed in 0..{SEED_LIMIT - 1}"),
            "num_workers": (self.num_workers >= 0, "0 (load in the main process) or more"),
            "phantom_count": (self.phantom_count >= 1, "a slice count >= 1"),
            "phantom_size": (IMAGE_SIZES[0] <= self.phantom_size <= IMAGE_SIZES[1],
                             f"a side of {IMAGE_SIZES[0]}..{IMAGE_SIZES[1]} pixels, e.g. 64"),
        })  # fmt: skip
        if self.roi_coords and self.roi_expansion is None:
            raise ConfigError("data.roi_coords=true needs ROI crops; set data.roi_expansion (e.g. 1.5)")
        if self.context_slices and self.roi_expansion is not None:
            raise ConfigError(
                "data.context_slices stacks whole neighbouring slices; it cannot go with ROI crops "
                "(data.roi_expansion): set one of them"
            )
        if self.exclude_copies_fold < -1:
            raise ConfigError(
                f"data.exclude_copies_fold={self.exclude_copies_fold}: -1 (copies of every image of "
                "data.exclude_copies_of) or a fold k >= 0 of that dataset (copies of its test patients)"
            )
        if self.exclude_copies_fold >= 0 and not self.exclude_copies_of:
            raise ConfigError("data.exclude_copies_fold needs data.exclude_copies_of (whose fold it is)")

    def for_other_data(self, path: str | Path) -> DataConfig:
        """The same preprocessing and folds read from ``path``, nothing excluded (how a run is scored
        on data it did not train on)."""
        return dataclasses.replace(self, path=str(path), exclude_copies_of="", exclude_copies_fold=-1)


@dataclass(frozen=True)
class ModelConfig:
    """Which registered network to build, and with what arguments.

    ``init_from`` starts training from saved weights (a ``.safetensors`` file); in a
    cross-validation ``{fold}`` in it is replaced by the fold number, so each fold can start from
    its own model (e.g. a Kaggle model trained without the copies of that fold's test patients).
    """

    name: str = "unet"
    in_channels: int = 1
    out_channels: int = 1
    kwargs: dict[str, Any] = field(default_factory=dict)
    init_from: str = ""

    def __post_init__(self) -> None:
        check_fields("model", self, {
            "name": (bool(self.name), "a registered model name; `braintumor models` lists them"),
            "in_channels": (self.in_channels >= 1, "a channel count >= 1"),
            "out_channels": (self.out_channels >= 1, "a mask channel count >= 1"),
        })  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, precision and stopping.

    ``ema_decay`` > 0 keeps an exponential moving average of the weights (updated every step;
    Lightning's ``EMAWeightAveraging``): validation, checkpoint selection and the exported weights
    use the average, which steadies small-data training. ``missing_modality_prob`` > 0 replaces
    each channel but ``modality_reference_channel`` by that channel with this probability per
    training sample (the LGG release's encoding of a missing sequence; see
    :func:`braintumor.training.augment.replace_missing_modalities`). ``gamma_prob`` > 0 adds a
    random gamma to the intensity augmentation (:func:`braintumor.data.transforms.train_transforms`),
    ``bias_field_prob`` > 0 a random smooth bias field; ``lesion_fade_prob`` > 0 lowers the
    contrast of annotated lesions (:func:`braintumor.training.augment.fade_lesions`).
    """

    task: str = "segment"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    scheduler: str = "cosine"
    loss: str = "dice-bce"
    precision: str = "auto"
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
    gamma_prob: float = 0.0
    bias_field_prob: float = 0.0
    lesion_fade_prob: float = 0.0
    seed: int = 42

    def __post_init__(self) -> None:
        check_fields("train", self, {
            "task": (self.task in TASKS, one_of(TASKS)),
            "epochs": (self.epochs >= 1, "a whole number of epochs >= 1"),
            "batch_size": (self.batch_size >= 1, "a batch size >= 1"),
            "lr": (self.lr > 0, "a learning rate > 0, e.g. 0.001"),
            "weight_decay": (self.weight_decay >= 0, "0 (off) or a positive decay, e.g. 0.0001"),
            "optimizer": (self.optimizer in OPTIMIZERS, one_of(OPTIMIZERS)),
            "scheduler": (self.scheduler in SCHEDULERS, one_of(SCHEDULERS)),
            "loss": (self.loss in LOSS_NAMES, one_of(LOSS_NAMES)),
            "precision": (self.precision in PRECISIONS, one_of(PRECISIONS)),
            "tumour_fraction": (0 <= self.tumour_fraction <= 1, "0 (off) or a share of draws up to 1"),
            "early_stopping_patience": (self.early_stopping_patience >= 0, "0 (off) or a number of epochs"),
            "freeze_epochs": (self.freeze_epochs >= 0, "0 (off) or a number of epochs"),
            "unfreeze_lr_factor": (self.unfreeze_lr_factor > 0, "a factor > 0, e.g. 0.1"),
            "max_minutes": (self.max_minutes >= 0, "0 (no budget) or a number of minutes"),
            "checkpoint_every_steps": (self.checkpoint_every_steps >= 1, "a step count >= 1"),
            "ema_decay": (0 <= self.ema_decay < 1, "0 (off) or a decay in (0, 1)"),
            "missing_modality_prob": (0 <= self.missing_modality_prob <= 1, "a probability in [0, 1]"),
            "modality_reference_channel": (self.modality_reference_channel >= 0, "a channel index >= 0"),
            "gamma_prob": (0 <= self.gamma_prob <= 1, "a probability in [0, 1]"),
            "bias_field_prob": (0 <= self.bias_field_prob <= 1, "a probability in [0, 1]"),
            "lesion_fade_prob": (0 <= self.lesion_fade_prob <= 1, "a probability in [0, 1]"),
            "seed": (0 <= self.seed < SEED_LIMIT, f"a seed in 0..{SEED_LIMIT - 1}"),
        })  # fmt: skip


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
        check_fields("eval", self, {
            "threshold": (0 < self.threshold < 1, "a probability in (0, 1)"),
            "component_fraction": (0 <= self.component_fraction <= 1, "a fraction in [0, 1]"),
            "postprocess_scope": (self.postprocess_scope in POSTPROCESS_SCOPES, one_of(POSTPROCESS_SCOPES)),
            "batch_size": (self.batch_size >= 1, "a batch size >= 1"),
        })  # fmt: skip


@dataclass(frozen=True)
class Preprocessing:
    """Everything that turns a decoded file into a model input; saved with every model.

    ``channels`` counts image channels (0: the file's own); ``roi_coords`` appends 2 position
    channels to each ROI crop (see :func:`braintumor.data.roi.crop_roi`), so the stored images
    have ``channels`` + 2; ``context_slices`` k stacks each slice with its k neighbours on either
    side (:func:`braintumor.data.preprocess.with_context`): ``channels`` × (2k + 1) inputs.
    """

    image_size: int = 128
    channels: int = 0
    normalization: str = "percentile-volume"
    percentiles: tuple[float, float] = (10.0, 99.0)
    roi_expansion: float | None = None
    roi_coords: bool = False
    context_slices: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "image_size": self.image_size,
            "channels": self.channels,
            "normalization": self.normalization,
            "percentiles": list(self.percentiles),
            "roi_expansion": self.roi_expansion,
            "roi_coords": self.roi_coords,
            "context_slices": self.context_slices,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Preprocessing:
        """The record of :meth:`to_dict` (``roi_coords`` and ``context_slices``, absent in records
        written before them: False and 0).

        Raises:
            ValueError: a missing or malformed field.
        """
        try:
            low, high = record["percentiles"]
            expansion = record.get("roi_expansion")
            return cls(
                image_size=int(record["image_size"]),
                channels=int(record["channels"]),
                normalization=str(record["normalization"]),
                percentiles=(float(low), float(high)),
                roi_expansion=None if expansion is None else float(expansion),
                roi_coords=bool(record.get("roi_coords", False)),
                context_slices=int(record.get("context_slices", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed preprocessing record {dict(record)!r} ({exc!r})") from None

    @property
    def coord_channels(self) -> int:
        """Position channels after the image channels: 2 with ``roi_coords``, else 0."""
        return COORD_CHANNELS if self.roi_coords else 0

    @property
    def stacked_slices(self) -> int:
        """Slices stacked into one input: 2 × ``context_slices`` + 1 (1 for 2D input)."""
        return 2 * self.context_slices + 1

    def method_for(self, volume: bool) -> str:
        """The normalisation applied to a volume's slices (``volume``) or to one separate image."""
        if volume:
            return self.normalization
        return PER_IMAGE_FALLBACK.get(self.normalization, self.normalization)


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
        return _coerce_tuple(value, typing.get_args(annotation), where)
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    if annotation is float:
        return _coerce_float(value, where)
    if annotation in (int, str, bool) and type(value) is not annotation:  # true is no count
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def _coerce_float(value: Any, where: str) -> float:
    """A finite number as float (YAML ints included; booleans, text, .nan and .inf refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _coerce_tuple(value: Any, types_: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    """A list of exactly ``len(types_)`` values, each coerced to its type."""
    if not isinstance(value, list | tuple) or len(value) != len(types_):
        raise ConfigError(f"{where}: expected a list of {len(types_)} values, got {value!r}")
    return tuple(_coerce(v, t, where) for v, t in zip(value, types_, strict=True))


def from_dict(cls: type[C], values: dict[str, Any], where: str = "config") -> C:
    """Build dataclass ``cls`` from ``values``; unknown keys are an error listing valid ones.

    ``where`` names ``values`` in messages (``train`` -> ``train.lr: expected a finite number``);
    empty for a whole experiment, whose sections name themselves.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - names
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown key(s) {sorted(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
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
        if not isinstance(result.setdefault(section, {}), dict):
            raise ConfigError(f"override {item!r}: {section} is {result[section]!r}, not a section")
        try:
            result[section][name] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(
                f"override {item!r}: {raw!r} is not a YAML value; quote text, e.g. 'a b'"
            ) from None
    return result


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read an experiment YAML (or defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        values = read_yaml(p)
        if not isinstance(values, dict):
            raise ConfigError(f"{p}: expected a mapping with data/model/train sections")
    values = apply_overrides(values, overrides or [])
    return from_dict(ExperimentConfig, values, where="")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so a stray ``data:`` line would drop a whole section of settings)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (safe loading, duplicate keys refused); a binary file (an image
    given by mistake), invalid YAML or a repeated key is a ConfigError naming the file."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not a text file (binary content); expected an experiment YAML such as "
            "configs/lgg-unet-cpu.yaml"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None


def dump_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from braintumor.io_utils import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
