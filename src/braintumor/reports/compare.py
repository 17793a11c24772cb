"""Side-by-side table of finished runs, read from their result files only.

A run folder is either a single-fold run (``metrics.json``, ``config.yaml``,
``checkpoints/best.safetensors`` + ``best.json``) or a cross-validation run (``cv_metrics.json``,
``config.yaml``, ``fold<k>/checkpoints/...``). A folder that is neither but holds runs (a sweep,
or a CV run whose summary is not written yet) stands for the runs inside it.

Nothing here imports ``braintumor.training``: parameters are counted from the safetensors header
and every other number comes from the JSON/YAML a run wrote.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from braintumor.data.roi import WHOLE_IMAGE_EXPANSION
from braintumor.errors import DataError
from braintumor.io_utils import atomic_write_text
from braintumor.run_dir import RunDir

METRICS = {
    "classify": ("accuracy", "balanced_accuracy", "macro_f1"),
    "segment": ("dice_per_patient_mean", "iou"),
}
LABELS = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "macro_f1": "macro-F1",
    "dice_per_patient_mean": "Dice per patient", "iou": "IoU",
}  # fmt: skip
# State-dict entries that are buffers, not parameters (BatchNorm running statistics).
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
RUN_FILES = (RunDir.METRICS, RunDir.CV_METRICS)


def count_safetensors_parameters(path: str | Path) -> int:
    """Number of parameter elements in a ``.safetensors`` file, read from its header only.

    BatchNorm running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) are
    buffers, not parameters, and are left out, so the count equals
    ``sum(p.numel() for p in model.parameters())`` of the network that wrote the file.

    Raises:
        DataError: the file is missing or not a safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "weights file not found")
    total = 0
    try:
        with safe_open(str(path), framework="numpy") as f:
            for name in f.keys():  # noqa: SIM118  (safe_open is not a Mapping)
                if name.endswith(BUFFER_SUFFIXES):
                    continue
                total += math.prod(f.get_slice(name).get_shape())
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise DataError(path, f"not a readable safetensors file ({exc})") from None
    return total


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read result file ({exc}); re-run or re-evaluate the run") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object")
    return data


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = RunDir(run_dir).config
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML ({exc})") from None
    return data if isinstance(data, dict) else {}


def is_run(path: Path) -> bool:
    """True if ``path`` holds ``metrics.json`` or ``cv_metrics.json``."""
    return any((path / name).is_file() for name in RUN_FILES)


def find_runs(paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(name, folder) of each run; a non-run folder stands for the runs directly inside it.

    Raises:
        DataError: a path is missing or holds no run.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise DataError(path, "run folder not found")
        if is_run(path):
            found.append((path.name, path))
            continue
        children = sorted(c for c in path.iterdir() if c.is_dir() and is_run(c))
        if not children:
            raise DataError(
                path,
                "not a run folder: expected metrics.json (single-fold run) or cv_metrics.json "
                "(cross-validation run), or sub-folders holding them; train or evaluate it first",
            )
        found.extend((f"{path.name}/{c.name}", c) for c in children)
    return found


def _weights(run_dir: Path, cv: dict[str, Any] | None) -> Path | None:
    run = RunDir(run_dir)
    if cv is None:
        candidates = [run.best_weights]
    else:
        ks = [f.get("fold") for f in cv.get("folds", []) if isinstance(f, dict)]
        candidates = [run.fold(int(k)).best_weights for k in ks if isinstance(k, int)]
        candidates += sorted(f.best_weights for f in run.folds().values())
    return next((c for c in candidates if c.is_file()), None)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def read_run(run_dir: str | Path, name: str | None = None) -> dict[str, Any]:
    """One comparison row for a run folder.

    Returns:
        ``run``, ``path``, ``kind`` (``single``/``cv``), ``task``, ``model``, ``init``
        (``scratch``/``pretrained``), ``init_from`` (file name or ""), ``roi_expansion``
        (None = whole image), ``n_folds``, each metric of :data:`METRICS` for the task as the value
        (single run) or mean over folds (CV) with ``<metric>_std`` (None for a single run),
        ``train_seconds`` (per fold, mean for CV) and ``parameters`` (None without weights).
    """
    run_dir = Path(run_dir)
    cv = _read_json(RunDir(run_dir).cv_metrics) if RunDir(run_dir).cv_metrics.is_file() else None
    single = None if cv is not None else _read_json(RunDir(run_dir).metrics)
    config = _read_config(run_dir)
    best_json = RunDir(run_dir).best_meta
    best = _read_json(best_json) if cv is None and best_json.is_file() else {}
    model = config.get("model") or best.get("model") or {}
    task = (cv or single or {}).get("task") or config.get("train", {}).get("task") or best.get("task", "")
    init_from = str(model.get("init_from") or "")
    weights = _weights(run_dir, cv)
    row: dict[str, Any] = {
        "run": name or run_dir.name,
        "path": str(run_dir),
        "kind": "cv" if cv is not None else "single",
        "task": task,
        "model": model.get("name", ""),
        "init": "pretrained" if init_from else "scratch",
        "init_from": Path(init_from).name if init_from else "",
        "roi_expansion": _number(config.get("data", {}).get("roi_expansion")),
        "n_folds": int(cv.get("n_folds", len(cv.get("folds", [])))) if cv is not None else 1,
    }
    for key in (*METRICS.get(task, ()), "train_seconds"):
        if cv is not None:
            row[key] = _number(cv.get("mean", {}).get(key))
            row[f"{key}_std"] = _number(cv.get("std", {}).get(key))
        else:
            row[key] = _number((single or {}).get(key))
            row[f"{key}_std"] = None
    row.pop("train_seconds_std", None)
    row["parameters"] = count_safetensors_parameters(weights) if weights is not None else None
    return row


def compare_runs(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows of :func:`read_run` for every run found by :func:`find_runs`, in the order given."""
    return [read_run(path, name) for name, path in find_runs(paths)]


def metric_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics shown for the tasks present, classification first."""
    tasks = {r.get("task") for r in rows}
    return [m for task, names in METRICS.items() if task in tasks for m in names]


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fmt_roi(value: float | None) -> str:
    if value is None:
        return "whole"
    return "whole (tumour slices)" if value >= WHOLE_IMAGE_EXPANSION else f"{value:g}"


def display_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells of the comparison (metrics as ``mean ± std`` over folds for CV)."""
    metrics = metric_columns(rows)
    labels = [LABELS.get(m, m) for m in metrics]
    headers = ["run", "task", "model", "init", "roi", "folds", *labels, "train s/fold", "parameters"]
    cells = []
    for r in rows:
        init = f"pretrained ({r['init_from']})" if r["init"] == "pretrained" else "scratch"
        values = []
        for m in metrics:
            text = _fmt(r.get(m))
            std = r.get(f"{m}_std")
            values.append(f"{text} ± {std:.3f}" if std is not None and r.get(m) is not None else text)
        params = r.get("parameters")
        cells.append(
            [r["run"], r["task"], r["model"], init, _fmt_roi(r["roi_expansion"]), str(r["n_folds"]),
             *values, _fmt(r.get("train_seconds"), 0), "–" if params is None else f"{params:,}"]
        )  # fmt: skip
    return headers, cells


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table of the rows."""
    headers, cells = display_table(rows)

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    body = [line(headers), "|" + "|".join(["---"] * len(headers)) + "|", *(line(c) for c in cells)]
    return "\n".join(body) + "\n"


def to_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Numeric table (one column per value, ``<metric>_std`` beside each metric) for CSV."""
    metrics = metric_columns(rows)
    columns = ["run", "path", "kind", "task", "model", "init", "init_from", "roi_expansion", "n_folds"]
    columns += [c for m in metrics for c in (m, f"{m}_std")] + ["train_seconds", "parameters"]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


def write_comparison(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write the rows as Markdown (``.md``) or CSV (``.csv``), atomically.

    Raises:
        DataError: any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".md":
        atomic_write_text(path, to_markdown(rows))
    elif suffix == ".csv":
        atomic_write_text(path, to_frame(rows).to_csv(index=False))
    else:
        raise DataError(path, f"unknown table format {suffix or '(no suffix)'!r}; use a .md or .csv file")
    return path
