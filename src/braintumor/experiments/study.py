"""Study configs: one YAML file names every step of a study (training, CV, evaluation, report).

A study file (``configs/studies/<study>.yaml``)::

    name: figshare-segment-classify
    description: U-Net masks + ResNet-50 ROI classifier on the same patient-level folds.
    data:                       # named datasets; the first is the default (``--data PATH`` replaces it)
      figshare: ${shared}/figshare
    anchors:                    # published figures shown beside the study's own
      dice: {value: 0.7495, source: seed study}
    quick:                      # applied to every step with --quick
      set: [train.epochs=1, data.image_size=64]
      folds: [0]                # only these folds of every cv / sweep-roi step
      trainer: {limit_train_batches: 2}
      data: {}                  # dataset replacements (smaller samples)
    steps:
      - {name: unet, kind: cv, config: ../figshare-unet-cpu.yaml}
      - {name: roi, kind: cv, config: ../figshare-roi-cpu.yaml, splits_from: unet}
      - {name: pipeline, kind: pipeline, seg: unet, cls: roi, fuse_weight: 0.5}
      - {name: fused, kind: fuse, cls: roi, weight: 0.5, trees: 1000}

``config`` paths are relative to the study file; ``set`` items are ``--set`` overrides. Dataset
paths may start with ``${shared}`` (the shared sample folder: ``$BRAINTUMOR_SHARED_DATA``, else a
``shared/data`` folder beside a parent of the study file or of the working directory); other
relative paths are relative to the study file. Steps refer to earlier steps by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from braintumor.config import read_yaml
from braintumor.errors import ConfigError

TRAINING_KINDS = ("train", "cv", "sweep-roi")
STEP_KINDS = (*TRAINING_KINDS, "pipeline", "fuse", "radiogenomics", "compare")
_COMMON = ("name", "kind", "description", "data", "set", "quick")
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "train": (*_COMMON, "config", "init_from", "splits_from", "exclude_copies_of"),
    "cv": (*_COMMON, "config", "init_from", "splits_from", "folds", "exclude_copies_of", "then_all"),
    "sweep-roi": (*_COMMON, "config", "init_from", "splits_from", "folds", "factors"),
    "pipeline": ("name", "kind", "description", "seg", "cls", "gate", "postprocess", "fuse_weight"),
    "fuse": ("name", "kind", "description", "cls", "weight", "trees"),
    "radiogenomics": ("name", "kind", "description", "data", "masks_from", "pixel_mm", "slice_mm", "top"),
    "compare": ("name", "kind", "description", "runs"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "train": ("config",), "cv": ("config",), "sweep-roi": ("config", "factors"),
    "pipeline": ("seg", "cls"), "fuse": ("cls",), "radiogenomics": (), "compare": ("runs",),
}  # fmt: skip
FUSE_DEFAULTS: dict[str, Any] = {"weight": 0.5, "trees": 1000}  # written into a fuse step's options
STUDY_KEYS = ("name", "description", "data", "anchors", "quick", "steps")
QUICK_KEYS = ("set", "folds", "trainer", "data")
SHARED = "${shared}"


@dataclass(frozen=True)
class Anchor:
    """A published figure to compare against; ``data`` limits it to one dataset of the study."""

    value: float
    source: str = ""
    data: str | None = None


@dataclass(frozen=True)
class QuickSpec:
    """Overrides of ``--quick`` (a smoke run of the whole study in about a minute)."""

    set: tuple[str, ...] = ()
    folds: tuple[int, ...] | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepSpec:
    """One step as written in the study file (references to other steps are names).

    Attributes:
        name: folder name of the step inside the study's run folder.
        kind: one of :data:`STEP_KINDS`.
        config: experiment YAML (absolute), for training kinds.
        set: ``section.key=value`` overrides.
        quick_set: extra overrides applied only with ``--quick``.
        data: dataset name (a key of the study's ``data``); None = the default dataset.
        options: the kind-specific keys (``folds``, ``factors``, ``init_from``, ``seg``...).
    """

    name: str
    kind: str
    config: Path | None = None
    set: tuple[str, ...] = ()
    quick_set: tuple[str, ...] = ()
    data: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A parsed study file."""

    name: str
    path: Path
    description: str
    datasets: dict[str, str]
    anchors: dict[str, Anchor]
    quick: QuickSpec
    steps: tuple[StepSpec, ...]

    @property
    def default_data(self) -> str:
        """Name of the default dataset (the first listed)."""
        return next(iter(self.datasets))

    def step(self, name: str) -> StepSpec:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise ConfigError(
            f"{self.path}: no step named {name!r}; steps: {', '.join(s.name for s in self.steps)}"
        )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def _folds(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ConfigError(f"{where}: expected a list of fold numbers such as [0, 1], got {value!r}")
    return tuple(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return dict(value)


def _check_keys(values: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(allowed)}")


def _anchor(name: str, value: Any, where: str) -> Anchor:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Anchor(float(value))
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        _check_keys(value, ("value", "source", "data"), f"{where}.{name}")
        data = value.get("data")
        return Anchor(float(value["value"]), str(value.get("source", "")), str(data) if data else None)
    raise ConfigError(
        f"{where}.{name}: expected a number or {{value: 0.96, source: ..., data: NAME}}, got {value!r}"
    )


def _quick(raw: Any, where: str) -> QuickSpec:
    values = _mapping(raw, where)
    _check_keys(values, QUICK_KEYS, where)
    data = _mapping(values.get("data"), f"{where}.data")
    return QuickSpec(
        set=_strings(values.get("set"), f"{where}.set"),
        folds=_folds(values.get("folds"), f"{where}.folds"),
        trainer=_mapping(values.get("trainer"), f"{where}.trainer"),
        data={str(k): str(v) for k, v in data.items()},
    )


def _step(raw: Any, i: int, base: Path, where: str) -> StepSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: steps[{i}] must be a mapping with name and kind, got {raw!r}")
    name = raw.get("name")
    here = f"{where}: step {name!r}" if name else f"{where}: steps[{i}]"
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"{here}: 'name' must be a folder name such as 'unet', got {name!r}")
    kind = raw.get("kind")
    if kind not in STEP_KINDS:
        raise ConfigError(f"{here}: unknown kind {kind!r}; valid kinds: {', '.join(STEP_KINDS)}")
    _check_keys(raw, ALLOWED_KEYS[kind], here)
    missing = [k for k in REQUIRED_KEYS[kind] if raw.get(k) in (None, "", [])]
    if missing:
        raise ConfigError(f"{here}: a {kind} step needs {', '.join(missing)}")
    config = None
    if "config" in raw:
        config = (base / str(raw["config"])).resolve()
        if not config.is_file():
            raise ConfigError(f"{here}: config {raw['config']!r} not found (looked for {config})")
    fixed = {"name", "kind", "description", "config", "set", "quick", "data"}
    options = {k: v for k, v in raw.items() if k not in fixed}
    if "folds" in options:
        options["folds"] = _folds(options["folds"], f"{here}.folds")
    _check_option_types(options, here)
    _check_option_ranges(options, here)
    if kind == "fuse":  # the defaults are part of the step's settings (a rerun that spells them out matches)
        options = {**FUSE_DEFAULTS, **options}
        options["weight"] = float(options["weight"])
    if "fuse_weight" in options:
        options["fuse_weight"] = float(options["fuse_weight"])
    if kind == "compare":
        options["runs"] = _strings(options["runs"], f"{here}.runs")
    return StepSpec(
        name=name,
        kind=kind,
        config=config,
        set=_strings(raw.get("set"), f"{here}.set"),
        quick_set=_strings(raw.get("quick"), f"{here}.quick"),
        data=str(raw["data"]) if raw.get("data") is not None else None,
        description=str(raw.get("description", "")),
        options=options,
    )


_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "postprocess": (bool,), "then_all": (bool,), "top": (int,), "pixel_mm": (int, float),
    "slice_mm": (int, float),
    "init_from": (str,), "splits_from": (str,), "masks_from": (str,), "seg": (str,), "cls": (str,),
    "gate": (str,), "exclude_copies_of": (str,),
    "factors": (str, list), "weight": (int, float), "fuse_weight": (int, float), "trees": (int,),
}  # fmt: skip


def _check_option_types(options: dict[str, Any], where: str) -> None:
    for key, value in options.items():
        types = _OPTION_TYPES.get(key)
        if types is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        ):
            expected = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}")


def _check_option_ranges(options: dict[str, Any], where: str) -> None:
    for key in ("weight", "fuse_weight"):
        if key in options and not 0.0 <= options[key] <= 1.0:
            raise ConfigError(
                f"{where}: {key} is the CNN's share of the probabilities, in [0, 1]; got {options[key]!r}"
            )
    if "trees" in options and options["trees"] < 1:
        raise ConfigError(f"{where}: trees must be at least 1, got {options['trees']!r}")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: study file not found; studies live in configs/studies/")
    values = read_yaml(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping with name, data and steps")
    return values


def load_study(path: str | Path) -> Study:
    """Parse and check a study file: keys, step kinds, config files and references between steps.

    Raises:
        ConfigError: naming the file and the step, with what was expected.
    """
    path = Path(path).resolve()
    values = _read_yaml(path)
    where = str(path)
    _check_keys(values, STUDY_KEYS, where)
    datasets = {str(k): str(v) for k, v in _mapping(values.get("data"), f"{where}: data").items()}
    if not datasets:
        raise ConfigError(
            f"{where}: 'data' must name at least one dataset, e.g. data: {{lgg: ${{shared}}/lgg128}}"
        )
    raw_steps = values.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f"{where}: 'steps' must be a non-empty list")
    steps = tuple(_step(raw, i, path.parent, where) for i, raw in enumerate(raw_steps))
    anchors = {
        str(k): _anchor(str(k), v, f"{where}: anchors")
        for k, v in _mapping(values.get("anchors"), where).items()
    }
    study = Study(
        name=str(values.get("name") or path.stem),
        path=path,
        description=str(values.get("description", "")).strip(),
        datasets=datasets,
        anchors=anchors,
        quick=_quick(values.get("quick"), f"{where}: quick"),
        steps=steps,
    )
    check_references(study)
    for name, anchor in anchors.items():
        if anchor.data is not None and anchor.data not in datasets:
            raise ConfigError(
                f"{where}: anchors.{name}.data={anchor.data!r} is not one of {', '.join(datasets)}"
            )
    return study


def _earlier(study: Study, i: int, name: str, kinds: tuple[str, ...], key: str) -> None:
    step = study.steps[i]
    before = {s.name: s.kind for s in study.steps[:i]}
    if name not in before:
        raise ConfigError(
            f"{study.path}: step {step.name!r}: {key}={name!r} names no earlier step; "
            f"earlier steps: {', '.join(before) or '(none)'}"
        )
    if before[name] not in kinds:
        raise ConfigError(
            f"{study.path}: step {step.name!r}: {key}={name!r} is a {before[name]} step; "
            f"expected {'/'.join(kinds)}"
        )


def is_step_reference(study: Study, value: str) -> bool:
    """True if ``value`` is the name of a step of ``study`` (else it is a path)."""
    return any(s.name == value for s in study.steps)


def check_references(study: Study) -> None:
    """Unique names; datasets and referenced steps exist and come earlier; overrides parse."""
    from braintumor.config import apply_overrides

    seen: set[str] = set()
    for i, step in enumerate(study.steps):
        if step.name in seen:
            raise ConfigError(f"{study.path}: two steps are named {step.name!r}; names must be unique")
        seen.add(step.name)
        if step.data is not None and step.data not in study.datasets:
            raise ConfigError(
                f"{study.path}: step {step.name!r}: data={step.data!r} is not one of the study's "
                f"datasets ({', '.join(study.datasets)})"
            )
        apply_overrides({}, [*step.set, *step.quick_set])  # raises on a malformed override
        copied = step.options.get("exclude_copies_of")
        if copied is not None and copied not in study.datasets:
            raise ConfigError(
                f"{study.path}: step {step.name!r}: exclude_copies_of={copied!r} is not one of the "
                f"study's datasets ({', '.join(study.datasets)})"
            )
        opts = step.options
        for key in ("init_from", "masks_from", "gate"):
            ref = opts.get(key)
            if isinstance(ref, str) and is_step_reference(study, ref):
                _earlier(study, i, ref, ("train", "cv"), key)
        if opts.get("splits_from"):
            _earlier(study, i, str(opts["splits_from"]), TRAINING_KINDS, "splits_from")
        if step.kind == "pipeline":
            _earlier(study, i, str(opts["seg"]), ("train", "cv"), "seg")
            _earlier(study, i, str(opts["cls"]), ("train", "cv", "sweep-roi"), "cls")  # a sweep: its arms
        if step.kind == "fuse":
            _earlier(study, i, str(opts["cls"]), ("train", "cv"), "cls")
        for ref in opts.get("runs", ()):
            _earlier(study, i, ref, TRAINING_KINDS, "runs")
    apply_overrides({}, list(study.quick.set))
