"""Read a result folder into a :class:`~braintumor.reports.document.Report`.

Five kinds of folder are recognised by the file that summarises them (first match wins):
``study.json`` (``braintumor experiment run``), ``radiogenomics.json`` (``braintumor radiogenomics``),
``sweep.json`` (an ROI sweep of ``roi-<factor>/`` CV runs), ``cv_metrics.json`` (a CV run of
``fold<k>/`` runs) and ``metrics.json`` (a single-fold run). Only result files are read; nothing
from training is imported.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from braintumor.errors import DataError
from braintumor.reports.compare import _read_config, _read_json
from braintumor.reports.document import FigureItem, Report, Section, Table, fmt
from braintumor.run_dir import RunDir

FIGURES = {
    RunDir.CURVES: "Training curves",
    RunDir.CONFUSION: "Confusion matrix",
    RunDir.ROC: "ROC curves (one-vs-rest)",
    RunDir.OVERLAYS: "Best, median and worst tumour slices (truth green, prediction red)",
    RunDir.DICE_PER_PATIENT: "Per-patient Dice distribution",
    RunDir.MISCLASSIFIED: "Most confident misclassified test images",
    RunDir.SWEEP_FIGURE: "Accuracy against the ROI expansion factor",
    "associations.png": "Strongest shape–variable associations",
}
KINDS = (("study", "study.json"), ("radiogenomics", "radiogenomics.json"), ("sweep", RunDir.SWEEP),
         ("cv", RunDir.CV_METRICS), ("single", RunDir.METRICS))  # fmt: skip
STRUCTURED_KEYS = {"per_patient", "per_class", "confusion", "confusion_classes", "folds", "mean", "std"}
PER_PATIENT_COLUMNS = ("patient_id", "n_slices", "dice", "iou", "precision", "recall", "hd95",
                       "true_volume", "pred_volume")  # fmt: skip


def folder_kind(folder: str | Path) -> str:
    """``study``, ``radiogenomics``, ``sweep``, ``cv`` or ``single``.

    Raises:
        DataError: the folder is missing or holds none of the summary files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "result folder not found")
    for kind, name in KINDS:
        if (folder / name).is_file():
            return kind
    raise DataError(
        folder,
        "nothing to report: expected metrics.json (run), cv_metrics.json (CV run), sweep.json (ROI "
        "sweep), radiogenomics.json or study.json; train/evaluate it first, or report the runs inside it",
    )


def frame_table(frame: pd.DataFrame, caption: str = "", columns: list[str] | None = None) -> Table:
    """A DataFrame as a text :class:`Table` (numbers through :func:`fmt`)."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    rows = [
        [fmt(v.item() if hasattr(v, "item") else v) for v in row]
        for row in frame[cols].itertuples(index=False)
    ]
    return Table(cols, rows, caption)


def scalar_table(values: dict[str, Any], caption: str = "") -> Table:
    """Scalars of a dict as metric/value rows; one level of nested scalars as ``outer.inner``."""
    rows = []
    for key, value in values.items():
        if key in STRUCTURED_KEYS or isinstance(value, list):
            continue
        if isinstance(value, dict):
            rows += [[f"{key}.{k}", fmt(v)] for k, v in value.items() if not isinstance(v, dict | list)]
        else:
            rows.append([key, fmt(value)])
    return Table(["metric", "value"], rows, caption)


def figures(folder: Path) -> list[FigureItem]:
    """The known figures present in ``folder`` (``gradcam*.png`` included), in a fixed order;
    ``curves.png`` is drawn from ``history.csv`` when only the history exists."""
    found = [FigureItem(f"{caption} ({name})", folder / name) for name, caption in FIGURES.items()
             if (folder / name).is_file()]  # fmt: skip
    found += [FigureItem(f"Grad-CAM ({p.name})", p) for p in RunDir(folder).gradcams()]
    if not RunDir(folder).curves.is_file() and RunDir(folder).history.is_file():
        drawn = _curves_png(RunDir(folder).history)
        if drawn is not None:
            found.insert(0, FigureItem("Training curves (drawn from history.csv)", png=drawn))
    return found


def _curves_png(history: Path) -> bytes | None:
    from braintumor.reports.plots import plot_training_curves

    try:
        fig = plot_training_curves(pd.read_csv(history))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def config_section(folder: Path) -> list[Section]:
    """``config.yaml`` as a folded code section (none without the file)."""
    path = RunDir(folder).config
    if not path.is_file():
        return []
    return [Section("Configuration (config.yaml)", code=path.read_text(), collapsed=True)]


def history_section(folder: Path) -> list[Section]:
    """Epoch count and the last epoch's logged values from ``history.csv``."""
    path = RunDir(folder).history
    if not path.is_file():
        return []
    try:
        history = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return [Section("Training history", notes=[f"history.csv is unreadable ({exc})"])]
    if "epoch" not in history.columns or history.empty:
        return [Section("Training history", paragraphs=[f"history.csv has {len(history)} rows, no epochs."])]
    per_epoch = history.groupby("epoch").mean(numeric_only=True)
    last = per_epoch.iloc[-1].dropna()
    table = Table(
        ["value", f"epoch {fmt(per_epoch.index[-1])}"], [[k, fmt(float(v))] for k, v in last.items()]
    )
    return [Section("Training history", [f"{len(per_epoch)} epochs logged; last epoch:"], tables=[table])]


def _per_patient(folder: Path, metrics: dict[str, Any]) -> pd.DataFrame | None:
    if RunDir(folder).per_patient.is_file():
        return pd.read_csv(RunDir(folder).per_patient)
    records = metrics.get("per_patient")
    return pd.DataFrame(records) if isinstance(records, list) and records else None


def task_sections(folder: Path, metrics: dict[str, Any]) -> list[Section]:
    """Per-patient Dice (segmentation) or per-class scores and confusion (classification)."""
    sections = []
    patients = _per_patient(folder, metrics)
    if patients is not None and "dice" in patients.columns:
        patients = patients.sort_values("dice", kind="stable", na_position="first")
        table = frame_table(patients, "worst first", list(PER_PATIENT_COLUMNS))
        sections.append(Section(f"Per-patient Dice ({len(patients)} patients)", tables=[table]))
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        names = list(per_class)
        rows = [
            [n, *(fmt(per_class[n].get(k)) for k in ("precision", "recall", "f1", "support"))] for n in names
        ]
        tables = [Table(["class", "precision", "recall", "f1", "support"], rows)]
        confusion = metrics.get("confusion")
        labels = metrics.get("confusion_classes") or names  # the pipeline's adds its no-tumour call
        if isinstance(confusion, list) and len(confusion) == len(labels):
            rows = [[n, *(fmt(v) for v in r)] for n, r in zip(labels, confusion, strict=True)]
            tables.append(Table(["true \\ predicted", *labels], rows, "Confusion matrix (counts)"))
        sections.append(Section("Per class", tables=tables))
    return sections


def single_sections(folder: Path, metrics: dict[str, Any]) -> list[Section]:
    """Metrics, task tables, history and figures of one run folder (no config)."""
    sections = [Section("Metrics", tables=[scalar_table(metrics)])]
    sections += task_sections(folder, metrics)
    sections += history_section(folder)
    found = figures(folder)
    if found:
        sections.append(Section("Figures", figures=found))
    return sections


def _config_facts(folder: Path) -> list[tuple[str, str]]:
    config = _read_config(folder)
    model, data = config.get("model") or {}, config.get("data") or {}
    facts = [("model", str(model.get("name", "")))] if model.get("name") else []
    if data.get("path"):
        facts.append(("data", str(data["path"])))
    if data.get("roi_expansion") is not None:
        facts.append(("ROI expansion", fmt(data["roi_expansion"])))
    return facts


def _task(folder: Path, metrics: dict[str, Any]) -> str:
    return str(metrics.get("task") or (_read_config(folder).get("train") or {}).get("task") or "")


def single_report(folder: Path) -> Report:
    """A single-fold run folder (``metrics.json``)."""
    metrics = _read_json(RunDir(folder).metrics)
    facts = [("kind", "single-fold run"), ("task", _task(folder, metrics)), *_config_facts(folder)]
    if metrics.get("fold") is not None:
        facts.append(("test fold", fmt(metrics["fold"])))
    sections = single_sections(folder, metrics) + config_section(folder)
    return Report(f"Run {folder.name}", "single", folder, facts, sections, metrics)


def cv_sections(folder: Path, summary: dict[str, Any], with_folds: bool = True) -> list[Section]:
    """Mean ± std, the per-fold table and (``with_folds``) a folded section per fold folder."""
    mean, std = summary.get("mean") or {}, summary.get("std") or {}
    rows = [[k, fmt(v), fmt(std.get(k))] for k, v in mean.items()]
    sections = [Section("Metrics (over folds)", tables=[Table(["metric", "mean", "std"], rows)])]
    if RunDir(folder).cv_folds.is_file():
        sections.append(Section("Per fold", tables=[frame_table(pd.read_csv(RunDir(folder).cv_folds))]))
    elif isinstance(summary.get("folds"), list):
        frame = pd.DataFrame(
            [{k: v for k, v in f.items() if k not in STRUCTURED_KEYS} for f in summary["folds"]]
        )
        sections.append(Section("Per fold", tables=[frame_table(frame)]))
    if with_folds:
        for k, fold in RunDir(folder).folds().items():
            if fold.metrics.is_file():
                children = single_sections(fold.path, _read_json(fold.metrics))
                sections.append(Section(f"Fold {k}", children=children, collapsed=True))
    return sections


def cv_report(folder: Path) -> Report:
    """A cross-validation run folder (``cv_metrics.json`` + ``fold<k>/``)."""
    summary = _read_json(RunDir(folder).cv_metrics)
    n_folds = summary.get("n_folds", len(summary.get("folds") or []))
    facts = [("kind", "cross-validation run"), ("task", _task(folder, summary)), ("folds", fmt(n_folds))]
    sections = cv_sections(folder, summary) + config_section(folder)
    return Report(
        f"Cross-validation {folder.name}", "cv", folder, facts + _config_facts(folder), sections, summary
    )


def sweep_report(folder: Path) -> Report:
    """An ROI sweep folder (``sweep.json`` + ``roi-<factor>/`` CV runs)."""
    result = _read_json(RunDir(folder).sweep)
    facts = [("kind", "ROI expansion sweep"), ("best factor", fmt(result.get("best_factor"))),
             ("ranked by", f"{result.get('metric', '')} (ties: {result.get('tie_break', '')})"),
             ("best on the test folds (optimistic)", fmt(result.get("best_on_test")))]  # fmt: skip
    sections = []
    rows = result.get("rows") or []
    if rows:
        sections.append(Section("Factors", tables=[frame_table(pd.DataFrame(rows))]))
    found = figures(folder)
    sections += [Section("Figures", figures=found)] if found else []
    for arm in RunDir(folder).roi_arms():
        if arm.cv_metrics.is_file():
            children = cv_sections(arm.path, _read_json(arm.cv_metrics), with_folds=False)
            text = [f"Figures per fold: `braintumor report {arm.path}`."]
            sections.append(Section(f"Arm {arm.path.name}", text, children=children, collapsed=True))
    sections += config_section(folder)
    return Report(
        f"ROI sweep {folder.name}", "sweep", folder, facts + _config_facts(folder), sections, result
    )
