"""Headline numbers of a finished step, read from its result files, and the study's summary rows.

Each step contributes ``{metric: {"mean", "std"}}`` (std is None for a single run), a protocol
(what was held out) and its dataset; :func:`summary_rows` turns them into one table row per
metric with the study's published anchor beside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from braintumor.experiments.plan import PlannedStep
from braintumor.experiments.study import Anchor
from braintumor.run_dir import RunDir

# (shown name, key in metrics.json / the mean of cv_metrics.json), per task
HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "segment": (("dice_per_patient", "dice_per_patient_mean"), ("dice_per_slice", "dice_per_slice_mean"),
                ("iou", "iou"), ("precision", "precision"), ("recall", "recall")),
    "classify": (("accuracy", "accuracy"), ("macro_f1", "macro_f1"),
                 ("accuracy_without_duplicates", "accuracy_without_duplicates"),
                 ("accuracy_patient_vote", "accuracy_patient_vote")),
    "pipeline": (("dice_per_patient", "dice_per_patient_mean"), ("dice_per_slice", "dice_per_slice_mean"),
                 ("accuracy", "accuracy"), ("macro_f1", "macro_f1"), ("accuracy_gt_crop", "accuracy_gt_crop"),
                 ("macro_f1_gt_crop", "macro_f1_gt_crop"), ("missed_fraction", "missed_fraction"),
                 ("gate_missed_fraction", "gate_missed_fraction"),
                 ("accuracy_fused", "accuracy_fused"), ("accuracy_gt_crop_fused", "accuracy_gt_crop_fused"),
                 ("accuracy_patient_vote", "accuracy_patient_vote")),
    "fusion": (("accuracy", "accuracy"), ("macro_f1", "macro_f1"), ("accuracy_cnn", "accuracy_cnn"),
               ("accuracy_forest", "accuracy_forest"), ("accuracy_patient_vote", "accuracy_patient_vote")),
}  # fmt: skip
FUSION_PROTOCOL = "CNN averaged with a region-feature forest fitted on each fold's training patients"
TIME = ("train_seconds", "train_seconds")
SPLIT_METHODS = {
    "official": "official patient-level {k}-fold (cvind)",
    "patient-kfold": "patient-level {k}-fold",
    "image-kfold": "image-level {k}-fold (no patient ids)",
    "predefined": "the dataset's Training/Testing split (image-level)",
}
_SUFFIXES = re.compile(r"(\[.*\]|_per_patient|_per_slice|_gt_crop|_without_duplicates|_fused|_cnn|_forest)+$")


def _read(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text()) if path.is_file() else {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if value != value else float(value)  # NaN -> None


def _pick(task: str, mean: dict[str, Any], std: dict[str, Any] | None) -> dict[str, dict[str, float | None]]:
    out = {}
    for shown, key in (*HEADLINES.get(task, ()), TIME):
        value = _number(mean.get(key))
        if value is not None:
            out[shown] = {"mean": value, "std": _number(std.get(key)) if std is not None else None}
    return out


def _sweep(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    out = {}
    for row in result.get("rows", []):
        for metric in ("accuracy", "macro_f1"):
            value = _number(row.get(f"{metric}_mean"))
            if value is not None:
                spread = _number(row.get(f"{metric}_std")) if int(row.get("n_folds") or 0) > 1 else None
                out[f"{metric}[roi {row['factor']}]"] = {"mean": value, "std": spread}
    return out


def _radiogenomics(summary: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    out = {k: {"mean": float(summary[k]), "std": None} for k in ("n_patients", "n_tests_run", "n_significant")
           if _number(summary.get(k)) is not None}  # fmt: skip
    qs = [_number(r.get("q")) for r in summary.get("top", [])]
    finite = [q for q in qs if q is not None]
    if finite:
        out["min_q"] = {"mean": min(finite), "std": None}
    return out


def step_metrics(step: PlannedStep) -> tuple[dict[str, dict[str, float | None]], dict[str, Any]]:
    """(headline metrics, extras) of a finished step, from its summary file."""
    data = _read(step.summary_file)
    if step.kind == "train":
        return _pick(str(data.get("task", "")), data, None), {"epochs": data.get("epochs")}
    if step.kind in ("cv", "pipeline", "fuse"):
        n_folds = int(data.get("n_folds") or 0)
        std = (data.get("std") or {}) if n_folds > 1 else None  # no spread over a single fold
        return _pick(str(data.get("task", "")), data.get("mean") or {}, std), {"n_folds": n_folds}
    if step.kind == "sweep-roi":
        return _sweep(data), {"best_factor": data.get("best_factor")}
    if step.kind == "radiogenomics":
        return _radiogenomics(data), {"masks": data.get("masks"), "warning": data.get("warning")}
    return {}, {"headers": data.get("headers", []), "cells": data.get("cells", [])}


def _splits_text(folder: Path, folds: list[int] | None) -> str:
    splits = _read(RunDir(folder).splits)
    if not splits:
        return ""
    k = int(splits.get("k") or len(splits.get("folds", [])) or 1)
    text = SPLIT_METHODS.get(str(splits.get("method")), str(splits.get("method"))).format(k=k)
    if folds is None or splits.get("method") == "predefined":
        return text
    ran = (
        "all folds"
        if len(folds) == k
        else f"fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))}"
    )
    return f"{text}, {ran}"


def _ran_folds(step: PlannedStep) -> list[int] | None:
    if step.kind == "train":
        return [int(_read(RunDir(step.folder).metrics).get("fold", 0))]
    if step.kind in ("cv", "pipeline", "fuse"):
        return [int(f.get("fold", 0)) for f in _read(step.summary_file).get("folds", [])]
    return list(step.folds) if step.folds is not None else None


def protocol(step: PlannedStep) -> str:
    """What the step held out, in words."""
    if step.kind == "radiogenomics":
        masks = (
            f"out-of-fold predicted masks of {step.refs['masks_from'].name}"
            if "masks_from" in step.refs
            else "ground-truth masks"
        )
        return f"shape features vs data.csv clusters, grade, death; {masks}"
    if step.kind == "compare":
        return "side-by-side table of " + ", ".join(step.spec.options["runs"])
    source = {"pipeline": step.refs.get("seg"), "fuse": step.refs.get("cls")}.get(step.kind) or step.folder
    if step.kind == "sweep-roi":
        return _splits_text(source, _ran_folds(step)) + ", same splits for every factor"
    text = _splits_text(source, _ran_folds(step))
    opts = step.spec.options
    if step.kind == "fuse":
        weight = float(opts.get("weight", 0.5))
        return f"{text}; {FUSION_PROTOCOL}" + (f" (CNN share {weight:g})" if weight != 0.5 else "")
    if step.kind == "pipeline":
        fused = opts.get("fuse_weight")
        fusion = f"; fused: {FUSION_PROTOCOL} (CNN share {float(fused):g})" if fused is not None else ""
        gate = f", gate {Path(str(opts['gate'])).name}" if opts.get("gate") else ""
        return (
            f"{text}; the bundle of each fold's runs as shipped (U-Net mask{gate} -> ROI crop -> classifier; "
            f"a missed tumour counts as wrong) on its test patients{fusion}"
        )
    return text


def anchor_for(metric: str, anchors: dict[str, Anchor], data: str = "") -> tuple[str, Anchor] | None:
    """(name, anchor): the anchor named ``metric``, else the one of its base name (``dice`` for
    ``dice_per_slice``); an anchor limited to a dataset applies to that dataset's rows only."""
    name = metric if metric in anchors else _SUFFIXES.sub("", metric)
    anchor = anchors.get(name)
    if anchor is None or metric == "train_seconds" or (anchor.data is not None and anchor.data != data):
        return None
    return name, anchor


def summary_rows(steps: list[dict[str, Any]], anchors: dict[str, Anchor]) -> list[dict[str, Any]]:
    """One row per (step, metric): step, kind, protocol, data, metric, mean, std and the anchor that
    applies (``anchor``, ``anchor_name``, ``anchor_source``; None and empty without one)."""
    rows = []
    for entry in steps:
        for metric, value in entry.get("metrics", {}).items():
            found = anchor_for(metric, anchors, entry.get("data", ""))
            name, anchor = found if found else ("", None)
            rows.append({
                "step": entry["name"], "kind": entry["kind"], "protocol": entry.get("protocol", ""),
                "data": entry.get("data", ""), "metric": metric, "mean": value["mean"], "std": value["std"],
                "anchor": anchor.value if anchor else None, "anchor_name": name,
                "anchor_source": anchor.source if anchor else "",
            })  # fmt: skip
    return rows
