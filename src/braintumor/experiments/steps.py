"""Run one planned step of a study; each kind writes the result files of its library function.

=================  ==============================================================  ========================
kind               library call                                                    summary file
=================  ==============================================================  ========================
``train``          :func:`braintumor.training.runner.train_fold`                   ``metrics.json``
``cv``             :func:`braintumor.training.cv.cross_validate`                   ``cv_metrics.json``
``sweep-roi``      :func:`braintumor.training.sweep.sweep_roi`                     ``sweep.json``
``pipeline``       :func:`braintumor.experiments.pipeline_eval.evaluate_pipeline`  ``cv_metrics.json``
``fuse``           :func:`braintumor.experiments.fusion.fuse_run`                  ``cv_metrics.json``
``radiogenomics``  :func:`braintumor.analysis.radiogenomics.run_radiogenomics`     ``radiogenomics.json``
``compare``        :func:`braintumor.reports.compare.compare_runs`                 ``compare.json``
=================  ==============================================================  ========================

A ``cv`` step with ``then_all: true`` then trains on every patient into ``all/``; the step counts as
finished once ``all/metrics.json`` exists.

A ``pipeline`` step scores the bundle made from its ``seg`` and ``cls`` steps (and ``gate``, a step or a
run folder, when given); with ``fuse_weight`` that bundle fuses the classifier with a region-feature forest;
a ``fuse`` step fuses a ``cv`` / ``train`` step's tumour-region classifier with that forest on each of
its folds (``weight``: the CNN's share, ``trees``: the forest's size).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from braintumor.errors import ConfigError
from braintumor.experiments.plan import PlannedStep
from braintumor.experiments.study import FUSE_DEFAULTS
from braintumor.io_utils import atomic_write_json
from braintumor.run_dir import RunDir


def _share_splits(step: PlannedStep) -> None:
    """Copy the ``splits_from`` step's ``splits.json`` into this step before it trains."""
    source = step.refs.get("splits_from")
    if source is None:
        return
    splits = RunDir(source).splits
    if not splits.is_file():
        raise ConfigError(
            f"step {step.name!r}: {splits} not found; the splits_from step has not written splits"
        )
    step.folder.mkdir(parents=True, exist_ok=True)
    own = RunDir(step.folder).splits
    if not own.is_file():
        own.write_text(splits.read_text())


def _folds(step: PlannedStep) -> list[int] | None:
    return list(step.folds) if step.folds is not None else None


def run_train(step: PlannedStep) -> None:
    from braintumor.training.runner import train_fold

    _share_splits(step)
    train_fold(step.config(), step.folder, trainer_overrides=step.trainer_overrides)


def run_cv(step: PlannedStep) -> None:
    from braintumor.training.cv import cross_validate

    _share_splits(step)
    cross_validate(
        step.config(),
        step.folder,
        folds=_folds(step),
        then_all=bool(step.spec.options.get("then_all")),
        trainer_overrides=step.trainer_overrides,
    )


def run_sweep(step: PlannedStep) -> None:
    from braintumor.training.sweep import parse_factors, sweep_roi

    _share_splits(step)
    raw = step.spec.options["factors"]
    factors = parse_factors(raw if isinstance(raw, str) else [str(f) for f in raw])
    sweep_roi(
        step.config(), step.folder, factors, folds=_folds(step), trainer_overrides=step.trainer_overrides
    )


def run_pipeline(step: PlannedStep) -> None:
    from braintumor.experiments.pipeline_eval import evaluate_pipeline

    opts = step.spec.options
    postprocess = bool(opts["postprocess"]) if opts.get("postprocess") is not None else None
    fuse_weight = float(opts["fuse_weight"]) if opts.get("fuse_weight") is not None else None
    evaluate_pipeline(
        step.refs["seg"],
        step.refs["cls"],
        step.folder,
        postprocess=postprocess,
        fuse_weight=fuse_weight,
        gate=step.refs.get("gate"),
    )


def run_fuse(step: PlannedStep) -> None:
    from braintumor.experiments.fusion import fuse_run

    opts = {**FUSE_DEFAULTS, **step.spec.options}
    fuse_run(step.refs["cls"], step.folder, weight=float(opts["weight"]), trees=int(opts["trees"]))


def run_radiogenomics(step: PlannedStep) -> None:
    from braintumor.analysis.radiogenomics import run_radiogenomics as analyse
    from braintumor.analysis.radiogenomics import write_radiogenomics
    from braintumor.reports.radiogenomics import write_association_figure

    opts = step.spec.options
    masks = None
    if "masks_from" in step.refs:
        from braintumor.experiments.segment import write_out_of_fold_masks

        masks = step.folder / "masks"
        write_out_of_fold_masks(step.refs["masks_from"], step.data, masks)
    top = int(opts.get("top", 9))
    result = analyse(step.data, masks, opts.get("pixel_mm"), opts.get("slice_mm"), top=top)
    if masks is not None:
        result.summary["masks_from"] = str(step.refs["masks_from"])
    step.folder.mkdir(parents=True, exist_ok=True)
    write_radiogenomics(result, step.folder)
    write_association_figure(step.folder, n=top)


def run_compare(step: PlannedStep) -> None:
    from braintumor.reports.compare import compare_runs, display_table, write_comparison

    runs = [step.refs[f"run:{name}"] for name in step.spec.options["runs"]]
    rows = compare_runs(runs)
    step.folder.mkdir(parents=True, exist_ok=True)
    write_comparison(rows, step.folder / "compare.md")
    write_comparison(rows, step.folder / "compare.csv")
    headers, cells = display_table(rows)
    atomic_write_json(step.folder / "compare.json", {"rows": rows, "headers": headers, "cells": cells})


RUNNERS: dict[str, Callable[[PlannedStep], None]] = {
    "train": run_train, "cv": run_cv, "sweep-roi": run_sweep, "pipeline": run_pipeline, "fuse": run_fuse,
    "radiogenomics": run_radiogenomics, "compare": run_compare,
}  # fmt: skip


def run_step(step: PlannedStep) -> None:
    """Run ``step`` into ``step.folder``."""
    RUNNERS[step.kind](step)


def drop_resume_checkpoints(folder: Path) -> int:
    """Delete Lightning ``*.ckpt`` files (optimizer state, for resuming) under a finished step;
    ``best.safetensors`` + ``best.json`` stay. Returns the number of files deleted."""
    files = list(folder.rglob("checkpoints/*.ckpt"))
    for f in files:
        f.unlink(missing_ok=True)
    return len(files)


def write_step_report(step: PlannedStep) -> str | None:
    """``report.html`` + ``report.md`` in the step folder (compare steps: none); the HTML path."""
    if step.kind == "compare":
        return None
    from braintumor.reports.html import write_report

    return str(write_report(step.folder)["html"])


def step_record(step: PlannedStep) -> dict[str, Any]:
    """The fingerprint written to ``step.json``."""
    return {"name": step.name, **step.fingerprint()}
