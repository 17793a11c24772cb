"""The report of a study folder (``braintumor experiment run``), read from its ``study.json``.

The page shows the summary table (step, protocol, data, metric mean ± std, published anchor), the
comparison tables of the study's ``compare`` steps, the ROI sweep figures, the datasets and
anchors, and where each step's own report lies. :func:`summary_markdown` is the same table as the
Markdown ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from braintumor.reports.document import FigureItem, Report, Section, Table, fmt
from braintumor.run_dir import RunDir

STUDY_FILE = "study.json"
SUMMARY_HEADERS = ["step", "protocol", "data", "metric mean ± std", "anchor"]


def mean_std(mean: Any, std: Any, digits: int = 3) -> str:
    """``0.812 ± 0.031``, ``0.812`` without a spread, ``–`` without a value."""
    if mean is None:
        return "–"
    text = f"{float(mean):.{digits}f}"
    return text if std is None else f"{text} ± {float(std):.{digits}f}"


def _metric_text(row: dict[str, Any]) -> str:
    if row["metric"] == "train_seconds":
        return f"train {mean_std(row['mean'], row['std'], 0)} s/fold"
    if row["metric"].startswith("n_"):
        return f"{row['metric']} {mean_std(row['mean'], row['std'], 0)}"
    return f"{row['metric']} {mean_std(row['mean'], row['std'])}"


def summary_table(record: dict[str, Any]) -> Table:
    """One row per step of ``study.json``'s table: its metrics as ``name mean ± std`` and the anchors
    that apply to them."""
    steps: dict[str, dict[str, Any]] = {}
    for row in record.get("table", []):
        entry = steps.setdefault(row["step"], {"row": row, "metrics": [], "anchors": {}})
        entry["metrics"].append(_metric_text(row))
        if row.get("anchor") is not None:
            source = f" ({row['anchor_source']})" if row.get("anchor_source") else ""
            entry["anchors"][row.get("anchor_name") or row["metric"]] = f"{row['anchor']:g}{source}"
    cells = []
    for name, entry in steps.items():
        anchors = "; ".join(f"{metric} {text}" for metric, text in entry["anchors"].items())
        row = entry["row"]
        cells.append([name, row["protocol"], row["data"], "; ".join(entry["metrics"]), anchors or "–"])
    return Table(SUMMARY_HEADERS, cells)


def _compare_sections(record: dict[str, Any]) -> list[Section]:
    out = []
    for step in record.get("steps", []):
        extras = step.get("extras") or {}
        if step.get("kind") == "compare" and extras.get("headers"):
            table = Table(list(extras["headers"]), [list(map(str, c)) for c in extras["cells"]])
            out.append(Section(f"Comparison: {step['name']}", [step.get("protocol", "")], tables=[table]))
    return out


def _step_table(record: dict[str, Any]) -> Table:
    rows = []
    for s in record.get("steps", []):
        rows.append(
            [s["name"], s["kind"], s.get("status", ""), fmt(s.get("seconds")), s.get("report") or "–"]
        )
    return Table(
        ["step", "kind", "status", "seconds", "report"], rows, "Each step's own report (relative path)"
    )


def _figures(folder: Path, record: dict[str, Any]) -> list[FigureItem]:
    found = []
    for s in record.get("steps", []):
        png = RunDir(folder / s["name"]).sweep_figure
        if s.get("kind") == "sweep-roi" and png.is_file():
            found.append(FigureItem(f"{s['name']}: accuracy against the ROI expansion factor", png))
    return found


def _body(record: dict[str, Any]) -> list[Section]:
    """Summary table, comparison tables, datasets and anchors (shared by HTML and summary.md)."""
    paragraphs = [record["description"]] if record.get("description") else []
    sections = [Section("Summary", paragraphs, tables=[summary_table(record)])]
    sections += _compare_sections(record)
    datasets = Table(["dataset", "path"], [[k, str(v)] for k, v in (record.get("datasets") or {}).items()])
    anchor_rows = [
        [k, f"{a.get('value'):g}", a.get("source", "")] for k, a in (record.get("anchors") or {}).items()
    ]
    anchors = Table(["metric", "value", "source"], anchor_rows)
    sections.append(Section("Datasets and anchors", tables=[datasets, anchors]))
    return sections


def _report(folder: Path, record: dict[str, Any], sections: list[Section]) -> Report:
    facts = [("kind", "study"), ("study file", str(record.get("file", ""))),
             ("mode", "quick (smoke run)" if record.get("quick") else "full"),
             ("status", str(record.get("status", ""))), ("steps", fmt(len(record.get("steps", [])))),
             ("wall time", f"{record.get('seconds') or 0:.0f} s")]  # fmt: skip
    notes = []
    if record.get("quick"):
        notes.append(
            "Quick mode: 1 epoch on small samples, a smoke test of the study; these numbers are not results."
        )
    if record.get("error"):
        notes.append(f"The study stopped with an error: {record['error']}")
    title = f"Study {record.get('study', folder.name)}"
    return Report(title, "study", folder, facts, sections, record, notes)


def study_report(folder: Path) -> Report:
    """A study folder (``study.json``, one sub-folder per step)."""
    from braintumor.reports.compare import _read_json

    record = _read_json(folder / STUDY_FILE)
    sections = _body(record)
    found = _figures(folder, record)
    if found:
        sections.insert(1, Section("Figures", figures=found))
    sections.append(Section("Steps", tables=[_step_table(record)], collapsed=True))
    return _report(folder, record, sections)


def summary_markdown(record: dict[str, Any]) -> str:
    """``summary.md``: the summary table, comparison tables, datasets and anchors in Markdown."""
    from braintumor.reports.document import to_markdown

    folder = Path(str(record.get("out", ".")))
    return to_markdown(_report(folder, record, _body(record)), folder)
