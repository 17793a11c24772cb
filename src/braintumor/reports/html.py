"""Self-contained HTML reports of result folders, with a Markdown twin and the metrics beside them.

``write_report(folder)`` writes ``report.html`` (every PNG embedded as a base64 ``data:`` URL, the
stylesheet inline: no network, no JavaScript, opens offline and survives being e-mailed) and
``report.md`` into the folder; given another ``out_dir`` it writes them there with a copy of the
folder's result object as ``metrics.json``. Every file is written atomically.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from braintumor.io_utils import atomic_write_json, atomic_write_text
from braintumor.reports.collect import cv_report, folder_kind, single_report, sweep_report
from braintumor.reports.document import FigureItem, Report, Section, Table, to_markdown
from braintumor.reports.radiogenomics import radiogenomics_report
from braintumor.reports.study import study_report
from braintumor.run_dir import RunDir

CSS = """
:root { --fg: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #ffffff; --band: #f5f7fa;
        --accent: #2f6fb3; --warn-bg: #fff8e1; --warn-line: #f0b429; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--band); color: var(--fg); line-height: 1.5;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 0 0 12px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 16px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; font-size: 0.9em; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 16px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; font-weight: 600; word-break: break-all; }
section, details.section { background: var(--bg); border: 1px solid var(--line); border-radius: 8px;
       padding: 16px 20px; margin: 0 0 18px; }
section section, section details.section { border: none; padding: 0; margin: 12px 0 0; }
details > summary { cursor: pointer; list-style: revert; }
details > summary h2, details > summary h3 { display: inline; border: none; }
.note { background: var(--warn-bg); border-left: 4px solid var(--warn-line); padding: 8px 12px;
        margin: 0 0 12px; border-radius: 4px; }
.table-wrap { overflow-x: auto; margin: 0 0 12px; }
table { border-collapse: collapse; font-size: 0.88em; min-width: 40%; }
caption { text-align: left; color: var(--muted); padding: 0 0 4px; font-style: italic; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--band); position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 0 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.88em; }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 4px; padding: 10px;
      overflow-x: auto; font-size: 0.85em; }
footer { color: var(--muted); font-size: 0.82em; padding-bottom: 28px; }
@media print { body { background: white; } section, details.section { break-inside: avoid; } }
"""


def png_data_url(data: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return text == "–"
    return True


def table_html(table: Table) -> str:
    """A table; numeric cells are right-aligned."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    cells = ("".join(f'<td class="num">{esc(c)}</td>' if _is_number(c) else f"<td>{esc(c)}</td>" for c in row)
             for row in table.rows)  # fmt: skip
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    table_tag = f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table-wrap">{table_tag}</div>'


def figure_html(figure: FigureItem) -> str:
    """An ``<img>`` with the PNG embedded as a data URL, and its caption."""
    caption = html.escape(figure.caption)
    image = f'<img alt="{caption}" src="{png_data_url(figure.data())}">'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def section_html(section: Section, level: int = 2) -> str:
    """One section (and its children one heading level down)."""
    esc = html.escape
    heading = f"<h{level}>{esc(section.title)}</h{level}>"
    parts = [f'<p class="note">{esc(n)}</p>' for n in section.notes]
    parts += [f"<p>{esc(p)}</p>" for p in section.paragraphs]
    parts += [table_html(t) for t in section.tables]
    parts += [figure_html(f) for f in section.figures]
    if section.code is not None:
        parts.append(f"<pre><code>{esc(section.code)}</code></pre>")
    parts += [section_html(c, min(level + 1, 6)) for c in section.children]
    body = "\n".join(parts)
    if section.collapsed:
        return f'<details class="section"><summary>{heading}</summary>\n{body}\n</details>'
    return f"<section>{heading}\n{body}\n</section>"


def to_html(report: Report) -> str:
    """The whole report as one HTML document with nothing to fetch."""
    from braintumor import __version__

    esc = html.escape
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in report.facts)
    notes = "".join(f'<p class="note"><strong>Warning:</strong> {esc(n)}</p>' for n in report.notes)
    sections = "\n".join(section_html(s) for s in report.sections)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(report.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{esc(report.title)}</h1>
<p class="sub">{esc(str(report.source))}</p>
<dl class="facts">{facts}</dl>
{notes}
</header>
<main>
{sections}
</main>
<footer>Generated {stamp} by braintumor {esc(__version__)} from the result files of the folder above.</footer>
</body>
</html>
"""


def write_report(folder: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write ``report.html`` and ``report.md`` for a result folder.

    Args:
        folder: a run, CV run, ROI sweep or radiogenomics folder.
        out_dir: where to write; default ``folder``. A different folder also gets ``metrics.json``
            (the run's metrics, a CV run's mean/std/folds, a sweep's rows or the radiogenomics
            summary); inside ``folder`` the run's own result file already holds them.

    Returns:
        ``{"folder", "kind", "html", "markdown"[, "metrics"], "figures"}`` (paths as strings,
        ``figures`` the number embedded).

    Raises:
        DataError: the folder holds nothing reportable.
    """
    folder = Path(folder)
    report = collect_report(folder)
    target = Path(out_dir) if out_dir is not None else folder
    run = RunDir(target)
    written: dict[str, Any] = {"folder": str(folder), "kind": report.kind}
    atomic_write_text(run.report_html, to_html(report))
    written["html"] = str(run.report_html)
    atomic_write_text(run.report_md, to_markdown(report, target))
    written["markdown"] = str(run.report_md)
    if target.resolve() != folder.resolve():
        atomic_write_json(run.metrics, report.metrics)
        written["metrics"] = str(run.metrics)
    written["figures"] = len(report.all_figures())
    return written


def report_targets(folders: Sequence[str | Path], out_dir: str | Path | None) -> list[Path | None]:
    """Where each report goes: the folder itself without ``out_dir``; ``out_dir`` for one folder;
    ``out_dir/<folder name>`` for several (``-2``, ``-3`` … added to repeated names)."""
    if out_dir is None:
        return [None] * len(folders)
    if len(folders) == 1:
        return [Path(out_dir)]
    targets: list[Path | None] = []
    used: dict[str, int] = {}
    for folder in folders:
        name = Path(folder).resolve().name
        used[name] = used.get(name, 0) + 1
        targets.append(Path(out_dir) / (name if used[name] == 1 else f"{name}-{used[name]}"))
    return targets


def write_reports(folders: Sequence[str | Path], out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """:func:`write_report` for each folder, placed by :func:`report_targets`."""
    return [write_report(f, t) for f, t in zip(folders, report_targets(folders, out_dir), strict=True)]


def collect_report(folder: str | Path) -> Report:
    """The :class:`Report` of any reportable folder (see :func:`folder_kind`)."""
    folder = Path(folder)
    builders = {"single": single_report, "cv": cv_report, "sweep": sweep_report,
                "radiogenomics": radiogenomics_report, "study": study_report}  # fmt: skip
    return builders[folder_kind(folder)](folder)
