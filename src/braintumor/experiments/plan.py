"""From a parsed study to concrete steps: dataset paths, config overrides, folds, trainer options.

Everything a step needs is resolved before the first step runs, so a study with a wrong path or a
bad override fails in a second instead of after hours of training. The resolved settings of each
step are its *fingerprint*, saved as ``<step>/step.json``; a rerun skips a finished step only if
its fingerprint is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from braintumor.config import ExperimentConfig, load_config
from braintumor.errors import ConfigError, DataError
from braintumor.experiments.study import SHARED, TRAINING_KINDS, StepSpec, Study, is_step_reference
from braintumor.run_dir import RunDir

SUMMARY_FILES = {
    "train": RunDir.METRICS, "cv": RunDir.CV_METRICS, "sweep-roi": RunDir.SWEEP,
    "pipeline": RunDir.CV_METRICS, "fuse": RunDir.CV_METRICS, "radiogenomics": "radiogenomics.json",
    "compare": "compare.json",
}  # fmt: skip


@dataclass(frozen=True)
class PlannedStep:
    """A step with everything resolved.

    Attributes:
        spec: the step as written.
        folder: ``RUN/<name>``.
        data_name: the dataset's name in the study; ``data``: its resolved path.
        overrides: every ``section.key=value`` applied to the step's config (training kinds).
        folds: folds to run (None = all).
        trainer: Lightning Trainer arguments that change results (``--quick``: ``limit_train_batches``).
        refs: other steps' folders this step reads, by option name.
        display: Trainer arguments that do not change results (the progress bar); not fingerprinted.
    """

    spec: StepSpec
    folder: Path
    data_name: str
    data: Path
    overrides: tuple[str, ...] = ()
    folds: tuple[int, ...] | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Path] = field(default_factory=dict)
    display: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def trainer_overrides(self) -> dict[str, Any]:
        """Everything passed to the Lightning Trainer."""
        return {**self.display, **self.trainer}

    @property
    def summary_file(self) -> Path:
        """The file holding the step's results."""
        return self.folder / SUMMARY_FILES[self.kind]

    @property
    def done_file(self) -> Path:
        """The file whose presence marks the step as finished: the summary file, or for a
        ``then_all`` CV the all-patient model's metrics, written after ``cv_metrics.json``."""
        if self.kind == "cv" and self.spec.options.get("then_all"):
            return RunDir(self.folder).all.metrics
        return self.summary_file

    def config(self) -> ExperimentConfig:
        """The step's experiment config (training kinds only)."""
        if self.spec.config is None:
            raise ConfigError(f"step {self.name!r} ({self.kind}) has no experiment config")
        return load_config(self.spec.config, list(self.overrides))

    def fingerprint(self) -> dict[str, Any]:
        """What must be unchanged for a finished step to be reused."""
        options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.spec.options.items()}
        return {
            "kind": self.kind,
            "config": str(self.spec.config) if self.spec.config else None,
            "overrides": list(self.overrides),
            "data": str(self.data),
            "folds": list(self.folds) if self.folds is not None else None,
            "trainer": dict(self.trainer),
            "options": options,
            "refs": {k: str(v) for k, v in self.refs.items()},
        }


def find_shared_data(starts: Sequence[Path], env_value: str | None = None) -> Path | None:
    """``env_value`` (``$BRAINTUMOR_SHARED_DATA``) if given, else the first ``shared/data`` folder
    found beside ``start`` or one of its parents, for each start in turn."""
    if env_value:
        return Path(env_value).expanduser().resolve()
    for start in starts:
        for folder in (start.resolve(), *start.resolve().parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate
    return None


def parse_data_options(values: Sequence[str], study: Study) -> dict[str, str]:
    """``--data PATH`` (the default dataset) and ``--data NAME=PATH`` -> {name: path}."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in study.datasets:
            out[name] = path
        elif sep and "/" not in name and not Path(value).exists():
            raise ConfigError(
                f"--data {value}: {name!r} is not a dataset of {study.path.name} "
                f"({', '.join(study.datasets)}); use --data NAME=PATH or --data PATH"
            )
        else:
            out[study.default_data] = value
    return out


def resolve_datasets(
    study: Study, quick: bool, replacements: dict[str, str], shared: Path | None
) -> dict[str, Path]:
    """Each dataset name -> an existing path (study file, then ``quick.data``, then ``--data``)."""
    raw = {name: (value, study.path.parent) for name, value in study.datasets.items()}
    if quick:
        raw.update({n: (v, study.path.parent) for n, v in study.quick.data.items() if n in raw})
    raw.update({n: (v, Path.cwd()) for n, v in replacements.items()})
    resolved = {}
    for name, (value, base) in raw.items():
        if value.startswith(SHARED):
            if shared is None:
                raise ConfigError(
                    f"{study.path}: dataset {name!r} is {value!r} but no shared data folder was found; "
                    f"set BRAINTUMOR_SHARED_DATA or pass --data {name}=PATH"
                )
            path = shared / value[len(SHARED) :].lstrip("/")
        else:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else base / path
        resolved[name] = path.resolve()
    return resolved


def _weights_of(study: Study, name: str, folder: Path, planned: dict[str, PlannedStep]) -> Path:
    """Best weights a later step initialises from: the train step's, or the first fold's of a CV."""
    step = planned[name]
    if study.step(name).kind == "train":
        return RunDir(folder).best_weights
    first = step.folds[0] if step.folds else 0
    return RunDir(folder).fold(first).best_weights


def _path_option(value: str, what: str, step: StepSpec) -> Path:
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise ConfigError(
            f"step {step.name!r}: {what}={value!r} is neither an earlier step nor an existing path"
        )
    return path


def _refs(study: Study, step: StepSpec, out: Path, planned: dict[str, PlannedStep]) -> dict[str, Path]:
    refs: dict[str, Path] = {}
    opts = step.options
    for key in ("splits_from", "seg", "cls", "masks_from", "gate"):
        value = opts.get(key)
        if isinstance(value, str) and value:
            refs[key] = out / value if is_step_reference(study, value) else _path_option(value, key, step)
    init = opts.get("init_from")
    if isinstance(init, str) and init:
        refs["init_from"] = (
            _weights_of(study, init, out / init, planned)
            if is_step_reference(study, init)
            else _path_option(init, "init_from", step)
        )
    for name in opts.get("runs", ()):
        refs[f"run:{name}"] = out / name
    return refs


def plan_study(
    study: Study,
    out: str | Path,
    quick: bool = False,
    data: dict[str, str] | None = None,
    shared: Path | None = None,
    trainer: dict[str, Any] | None = None,
) -> list[PlannedStep]:
    """Resolve every step of ``study`` for a run into ``out``.

    Args:
        quick: apply the study's ``quick`` block and each step's ``quick`` overrides.
        data: dataset replacements {name: path} (see :func:`parse_data_options`).
        shared: the shared sample folder that ``${shared}`` stands for.
        trainer: Trainer arguments for every training step that do not change results (progress bar).

    Raises:
        ConfigError / DataError: a missing dataset, a config that does not load, a bad reference.
    """
    out = Path(out).resolve()
    datasets = resolve_datasets(study, quick, data or {}, shared)
    planned: dict[str, PlannedStep] = {}
    for step in study.steps:
        data_name = step.data or study.default_data
        if step.kind == "pipeline" and str(step.options["seg"]) in planned:
            data_name = planned[str(step.options["seg"])].data_name  # the pipeline reads the U-Net's data
        if step.kind == "fuse" and str(step.options["cls"]) in planned:
            check_region_classifier(step, planned[str(step.options["cls"])])
            data_name = planned[str(step.options["cls"])].data_name  # the forest reads the CNN's data
        path = datasets[data_name]
        if step.kind != "compare" and not path.exists():
            raise DataError(
                path, f"dataset {data_name!r} of step {step.name!r} not found; pass --data {data_name}=PATH"
            )
        refs = _refs(study, step, out, planned)
        folds = step.options.get("folds")
        if quick and study.quick.folds is not None and step.kind in ("cv", "sweep-roi"):
            folds = study.quick.folds
        training = step.kind in TRAINING_KINDS
        overrides = _overrides(study, step, quick, refs, path) if training else ()
        if training and "exclude_copies_of" in step.options:
            overrides = (
                *overrides,
                f"data.exclude_copies_of={datasets[str(step.options['exclude_copies_of'])]}",
            )
        quick_trainer = dict(study.quick.trainer) if quick and training else {}
        display = dict(trainer or {}) if training else {}
        planned[step.name] = PlannedStep(
            step, out / step.name, data_name, path, overrides, folds, quick_trainer, refs, display
        )
        if training:
            check_training_config(planned[step.name])
    return list(planned.values())


def _overrides(
    study: Study, step: StepSpec, quick: bool, refs: dict[str, Path], data: Path
) -> tuple[str, ...]:
    """The step's ``set``, then (``--quick``) the study's and the step's quick overrides, then what the
    study fixes: the initial weights, the task of an ROI sweep and the dataset path."""
    extra = [*study.quick.set, *step.quick_set] if quick else []
    init = [f"model.init_from={refs['init_from']}"] if "init_from" in refs else []
    task = ["train.task=classify"] if step.kind == "sweep-roi" else []
    return (*step.set, *extra, *init, *task, f"data.path={data}")


def check_region_classifier(step: StepSpec, cls: PlannedStep) -> None:
    """The ``cls`` step of a fuse step classifies tumour regions (``data.roi_expansion``)."""
    cfg = cls.config()
    if cfg.train.task != "classify" or cfg.data.roi_expansion is None:
        raise ConfigError(
            f"step {step.name!r}: cls={cls.name!r} is not a tumour-region classifier (train.task="
            f"{cfg.train.task!r}, data.roi_expansion={cfg.data.roi_expansion!r}); the forest is fused "
            "with a classifier of tumour crops"
        )


def check_training_config(step: PlannedStep) -> None:
    """The config loads with the step's overrides and names a model of the right task."""
    from braintumor.models.network import check_model

    try:
        cfg = step.config()
        check_model(cfg.model, cfg.train.task)
    except ConfigError as exc:  # an unknown model name too
        raise ConfigError(f"step {step.name!r}: {exc}") from None
    if step.kind == "sweep-roi":
        from braintumor.training.sweep import parse_factors

        raw = step.spec.options["factors"]
        try:
            parse_factors(raw if isinstance(raw, str) else [str(f) for f in raw])
        except ConfigError as exc:
            raise ConfigError(f"step {step.name!r}: {exc}") from None
