"""A report as plain data (sections of text, tables, figures and code) and its Markdown form.

:mod:`braintumor.reports.collect` fills a :class:`Report` from a result folder;
:mod:`braintumor.reports.html` renders it as one self-contained HTML page and this module as
Markdown, so both always say the same thing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """Text cells under headers; ``caption`` is shown above the table."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class FigureItem:
    """A PNG figure: a file (``path``) or one drawn in memory (``png`` bytes)."""

    caption: str
    path: Path | None = None
    png: bytes | None = None

    def data(self) -> bytes:
        """The PNG bytes."""
        if self.png is not None:
            return self.png
        if self.path is None:
            raise ValueError(f"figure {self.caption!r} has neither a path nor PNG bytes")
        return self.path.read_bytes()


@dataclass
class Section:
    """A titled part of a report, rendered in the order: notes, paragraphs, tables, figures, code,
    children. ``collapsed`` sections are folded (HTML ``<details>``) until opened."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureItem] = field(default_factory=list)
    code: str | None = None
    collapsed: bool = False
    children: list[Section] = field(default_factory=list)

    def all_figures(self) -> list[FigureItem]:
        """This section's figures and those of its children, depth first."""
        return [*self.figures, *(f for child in self.children for f in child.all_figures())]


@dataclass
class Report:
    """Everything a report says about one result folder.

    Attributes:
        title: page title.
        kind: ``single``, ``cv``, ``sweep``, ``radiogenomics`` or ``study``.
        source: the result folder.
        facts: (label, value) pairs shown under the title.
        sections: the body.
        metrics: the folder's result object, written beside the report as ``metrics.json``.
        notes: warnings shown prominently under the facts.
    """

    title: str
    kind: str
    source: Path
    facts: list[tuple[str, str]]
    sections: list[Section]
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def all_figures(self) -> list[FigureItem]:
        """Every figure of the report, in page order."""
        return [f for s in self.sections for f in s.all_figures()]


def fmt(value: Any, digits: int = 4) -> str:
    """A cell's text: ints and whole floats as integers, other floats to ``digits`` decimals
    (significant digits under 0.01 or from 1e5, so small p-values keep their precision),
    None/NaN as an en dash, lists and dicts compactly."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer():
            return str(int(value))
        return f"{value:.{digits}g}" if abs(value) >= 1e5 or abs(value) < 0.01 else f"{value:.{digits}f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join(["---"] * len(table.headers)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return [*lines, ""]


def _md_figure(figure: FigureItem, base: Path) -> str:
    if figure.path is None:
        return f"- {figure.caption} (drawn from the result files; embedded in report.html)"
    try:
        link = os.path.relpath(figure.path.resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        link = str(figure.path)
    return f"![{figure.caption}]({Path(link).as_posix()})"


def _md_section(section: Section, base: Path, level: int) -> list[str]:
    lines = [f"{'#' * level} {section.title}", ""]
    lines += [*(f"> **Warning:** {n}" for n in section.notes), *([""] if section.notes else [])]
    lines += [line for p in section.paragraphs for line in (p, "")]
    for table in section.tables:
        lines += _md_table(table)
    lines += [line for f in section.figures for line in (_md_figure(f, base), "")]
    if section.code is not None:
        lines += ["```yaml", section.code.rstrip("\n"), "```", ""]
    for child in section.children:
        lines += _md_section(child, base, min(level + 1, 6))
    return lines


def to_markdown(report: Report, base: Path, sections: Sequence[Section] | None = None) -> str:
    """The report as GitHub-flavoured Markdown; figure links are relative to ``base`` (the folder
    the Markdown file is written to)."""
    lines = [f"# {report.title}", ""]
    lines += [f"- **{label}:** {value}" for label, value in report.facts]
    lines += ["", *(line for n in report.notes for line in (f"> **Warning:** {n}", ""))]
    for section in sections if sections is not None else report.sections:
        lines += _md_section(section, base, 2)
    return "\n".join(lines).rstrip("\n") + "\n"
