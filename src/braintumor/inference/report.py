"""``<name>_report.html``: one self-contained, printable report per analysed input.

The page holds the input's identity (file or folder names only: no path, no patient attributes
unless ``identifiers`` is set, which adds the full path and, for DICOM input, PatientID,
PatientName and StudyDate), when and how it was analysed (package version, backend, settings),
the bundle's model card (name, version, training data, each model's architecture, classes,
preprocessing and held-out metrics), the findings, the figures already written for the input
(overlays, Grad-CAM; embedded as PNG data URLs), a per-slice table for volumes, and
:data:`~braintumor.inference.results.RESEARCH_USE`. It needs no script and fetches nothing (a
Content-Security-Policy forbids both), prints on A4 from a browser (each part on its own page)
and every text taken from inputs or the bundle is HTML-escaped.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from braintumor import __version__
from braintumor.inference.results import RESEARCH_USE, AnalysisResult, SliceResult
from braintumor.inference.sources import Scan
from braintumor.io_utils import atomic_write

if TYPE_CHECKING:
    from braintumor.bundle.load import Bundle
    from braintumor.inference.backends import Backend
    from braintumor.inference.pipeline import AnalysisSettings

REPORT_SUFFIX = "_report.html"
MAX_FIGURE_SLICES = 12
"""Tumour slices of a volume shown as figures (those with the largest tumour area)."""
MAX_TABLE_ROWS = 200
SETTINGS = ("threshold", "min_area_px", "gate_threshold", "largest_component", "fill_holes",
            "component_fraction", "postprocess_scope", "tta_flips", "mask_confidence_floor")  # fmt: skip
IDENTIFIERS = ("PatientID", "PatientName", "StudyDate")
CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2933;
       max-width: 960px; margin: 0 auto; padding: 16px 24px; }
h1 { font-size: 1.5em; margin: 0 0 4px; } h2 { font-size: 1.2em; border-bottom: 2px solid #d9e2ec; }
h3 { font-size: 1em; margin: 14px 0 6px; }
.banner, .warning { border-left: 4px solid #f0b429; background: #fff8e1; padding: 6px 12px; }
.banner { font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dt { color: #616e7c; } dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0 0 10px; }
caption { text-align: left; color: #616e7c; font-style: italic; }
th, td { padding: 3px 9px; border-bottom: 1px solid #d9e2ec; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f7fa; padding: 8px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; max-width: 100%; } figure img { max-width: 100%; max-height: 420px; }
figcaption, .muted { color: #616e7c; font-size: 0.88em; }
footer { margin-top: 24px; border-top: 2px solid #d9e2ec; padding-top: 8px; }
@page { size: A4; margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  section.page { break-before: page; }
  figure, tr, dl, .banner, .warning { break-inside: avoid; }
  thead { display: table-header-group; }
  figure img { max-height: 120mm; }
}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class ReportContext:
    """What a report says about how an input was analysed.

    Attributes:
        bundle: the bundle's ``bundle.json`` (:attr:`Bundle.info <braintumor.bundle.load.Bundle.info>`).
        backend: backend name and precision, e.g. ``torch (fp32)``.
        settings: the analysis settings in effect (the bundle's defaults and any overrides).
        identifiers: add the full input path and DICOM patient attributes.
    """

    bundle: dict[str, Any]
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    identifiers: bool = False

    @classmethod
    def create(
        cls, bundle: Bundle, backend: Backend, settings: AnalysisSettings, identifiers: bool = False
    ) -> ReportContext:
        precision = getattr(backend, "precision", None)
        name = f"{backend.name} ({precision})" if precision else backend.name
        values = {k: getattr(settings, k) for k in SETTINGS}
        return cls(dict(bundle.info), name, values, identifiers)


def write_report(scan: Scan, result: AnalysisResult, context: ReportContext, path: Path) -> str:
    """Write ``result``'s report to ``path`` (UTF-8, atomically); returns the path. The figures are
    the PNGs ``result.outputs`` and its slices' ``outputs`` name, so they are written first."""
    text = report_html(scan, result, context)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)
    return str(path)


def report_html(
    scan: Scan, result: AnalysisResult, context: ReportContext, now: datetime | None = None
) -> str:
    """The whole report as one HTML document (see the module doc)."""
    shown, hidden = _shown_name(scan)
    title = f"Brain tumour MRI analysis: {shown}"
    when = (now or datetime.now().astimezone()).isoformat(timespec="seconds")
    run = [("analysed", when), ("braintumor", __version__), ("backend", context.backend)]
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="banner">{escape(RESEARCH_USE)}</p>',
        _section("Input", _facts(_identity(scan, result, context.identifiers)) + _facts(run)),
        _section("Findings", _findings(result, "" if context.identifiers else hidden)),
        _section("Figures", _figures(result), page=True),
    ]
    if result.kind == "volume":
        parts.append(_section("Slices", _slice_table(result), page=True))
    parts.append(_section("Model", _model_card(context.bundle, context.settings), page=True))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
{"".join(parts)}
<footer><p class="banner">{escape(RESEARCH_USE)}</p>
<p class="muted">Written by braintumor {escape(__version__)} with the model bundle
{escape(str(context.bundle.get("name", "?")))}. The findings are a model's output; they have not been
reviewed by a person.</p></footer>
</body>
</html>
"""


# ---------------------------------------------------------------------------- parts


def _shown_name(scan: Scan) -> tuple[str, str]:
    """(the name the report shows, the folder above it that it does not): the file's name; for a
    volume of several files (DICOM series, numbered slices) the folder's."""
    source = Path(scan.source)
    several = scan.kind == "volume" and scan.nifti is None
    shown = source.parent if several and source.is_file() else source
    return shown.name or scan.source, str(shown.parent)


def _identity(scan: Scan, result: AnalysisResult, identifiers: bool) -> list[tuple[str, str]]:
    """File or folder name, slice count, size and spacing; with ``identifiers`` the path and the
    DICOM patient attributes that are present."""
    shown, _ = _shown_name(scan)
    if scan.kind == "image":
        rows = [("file", shown)]
    elif scan.dicom:
        rows = [("DICOM series (folder)", shown), ("instances", str(len(scan.dicom)))]
    elif scan.nifti is not None:
        rows = [("NIfTI file", shown), ("slices", str(len(scan.slices)))]
    else:
        rows = [("slice folder", shown), ("slices", str(len(scan.slices)))]
    rows.append(("slice size", f"{scan.shape[0]} × {scan.shape[1]} px" + _channels(scan)))
    if result.spacing_mm:
        rows.append(("spacing", " × ".join(f"{v:g}" for v in result.spacing_mm) + " mm"))
    if identifiers:
        rows.append(("path", scan.source))
        header = scan.dicom[0] if scan.dicom else None
        rows += [(k, str(header.get(k))) for k in IDENTIFIERS if header is not None and header.get(k)]
    return rows


def _channels(scan: Scan) -> str:
    return f", {scan.channels} channels" if scan.channels > 1 else ""


def _findings(result: AnalysisResult, hidden: str) -> str:
    """Tumour or not, class and probabilities, size, uncertainty, the input check and the notes;
    ``hidden`` (the folder above the input) is cut from the notes."""
    prob = result.probabilities.get(result.label or "")
    label = str(result.label or "-") + (f" (p = {prob:.3f})" if prob is not None else "")
    rows = [("tumour", "yes" if result.tumour else "no"), ("class", label)]
    area = f"{result.area_px} px" if result.area_px is not None else "- (no mask: whole-slice classifier)"
    if result.area_mm2 is not None:
        area = f"{result.area_mm2:.1f} mm² ({area})"
    if result.kind == "volume":
        hits = f"{len(result.tumour_slices)} of {len(result.slices)}"
        rows += [
            ("majority slice class", str(result.majority_label or "-")),
            (
                "slices with tumour",
                hits + (f": {_list(result.tumour_slices)}" if result.tumour_slices else ""),
            ),
            ("tumour volume", _value(result.volume_mm3, ".0f", "mm³")),
            ("tumour area (all slices)", area),
        ]
    else:
        rows.append(("tumour area", area))
    rows += [
        ("uncertainty: segmentation", _value(result.uncertainty.segmentation, ".4f")),
        ("uncertainty: classification", _value(result.uncertainty.classification, ".4f")),
    ]
    parts = [_facts(rows), _probabilities(result)]
    if result.warning:
        distance = f" (distance {result.input_distance:.3f})" if result.input_distance is not None else ""
        check = escape(result.warning + distance)
        parts.append(f'<p class="warning"><strong>Input check:</strong> {check}</p>')
    if result.notes:
        notes = "".join(f"<li>{escape(_hide(n, hidden))}</li>" for n in result.notes)
        parts.append(f"<h3>Notes</h3><ul>{notes}</ul>")
    return "".join(parts)


def _probabilities(result: AnalysisResult) -> str:
    """Class probabilities (with the classifier's own beside fused ones) and the gate's."""
    parts = []
    if result.probabilities:
        cnn = result.cnn_probabilities
        head = ["class", "probability"] + (["classifier alone"] if cnn else [])
        rows = [[k, _value(v, ".3f")] for k, v in result.probabilities.items()]
        if cnn:
            rows = [[*row, _value(cnn.get(row[0]), ".3f")] for row in rows]
        over = " (mean over tumour slices)" if result.kind == "volume" and result.tumour else ""
        parts.append(_table(head, rows, f"Class probabilities{over}"))
    if result.gate_probabilities:
        rows = [[k, _value(v, ".3f")] for k, v in result.gate_probabilities.items()]
        parts.append(_table(["class", "probability"], rows, "Whole-slice gate"))
    return "".join(parts)


FIGURES = (("overlay", "tumour outline and class"), ("gradcam", "Grad-CAM of the class"))


def _figures(result: AnalysisResult) -> str:
    """The overlays (and Grad-CAM maps) written for the input; for a volume those of the
    :data:`MAX_FIGURE_SLICES` tumour slices with the largest area, in slice order."""
    intro = ""
    if result.kind == "image":
        items = [("", result.outputs)]
    else:
        hits = [s for s in result.slices if s.tumour and s.outputs]
        largest = sorted(hits, key=lambda s: -(s.area_px or 0))[:MAX_FIGURE_SLICES]
        items = [(f"slice {s.index}: ", s.outputs) for s in sorted(largest, key=lambda s: s.index)]
        if len(hits) > len(largest):
            intro = (
                f"<p class='muted'>{len(largest)} of {len(hits)} tumour slices (the largest); "
                "every slice's overlay is in the output folder.</p>"
            )
    figures = [
        _figure(outputs[key], prefix + what)
        for prefix, outputs in items
        for key, what in FIGURES
        if key in outputs
    ]
    if not figures:
        return "<p>No tumour found: no figure.</p>"
    return intro + f'<div class="figures">{"".join(figures)}</div>'


def _figure(path: str, caption: str) -> str:
    """A PNG file embedded as a data URL, with its caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    image = f'<img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
    return f"<figure>{image}<figcaption>{escape(caption)}</figcaption></figure>"


def _slice_table(result: AnalysisResult) -> str:
    """One row per slice (the first :data:`MAX_TABLE_ROWS`)."""
    head = ["slice", "tumour", "class", "p", "area px", "area mm²", "uncertainty", "skipped"]
    rows = [_slice_row(s) for s in result.slices[:MAX_TABLE_ROWS]]
    table = _table(head, rows)
    if len(result.slices) > MAX_TABLE_ROWS:
        total = len(result.slices)
        table += f"<p class='muted'>First {MAX_TABLE_ROWS} of {total} slices; all are in the JSON.</p>"
    return table


def _slice_row(s: SliceResult) -> list[str]:
    prob = s.probabilities.get(s.label or "")
    return [
        str(s.index),
        "yes" if s.tumour else "no",
        str(s.label or "-"),
        _value(prob, ".3f"),
        _value(s.area_px, "d"),
        _value(s.area_mm2, ".1f"),
        _value(s.uncertainty.segmentation, ".4f"),
        s.skipped,
    ]


def _model_card(info: dict[str, Any], settings: dict[str, Any]) -> str:
    """The bundle: identity, training data and command, fusion, each model and its metrics, and
    the analysis settings in effect."""
    classes = ", ".join(map(str, info.get("classes") or [])) or "none (segmentation only)"
    fields = (("bundle", "name"), ("version", "version"), ("created", "created"), ("weights", "dtype"))
    rows = [(label, str(info.get(key, "-"))) for label, key in fields]
    rows.append(("classes", classes))
    fusion = _dict(info, "fusion")
    if fusion:
        trees, weight = fusion.get("trees", "?"), fusion.get("weight_cnn", "?")
        rows.append(("fusion", f"classifier weight {weight} with a region-feature forest of {trees} trees"))
    parts = [_facts(rows), "<h3>Training data</h3>", f"<p>{escape(str(info.get('data') or '-'))}</p>"]
    if info.get("training_command"):
        parts.append(f"<h3>Training command</h3><pre>{escape(str(info['training_command']))}</pre>")
    models = _dict(info, "models")
    for role, entry in models.items():
        name = ROLE_NAMES["whole"] if role == "cls" and "seg" not in models else None
        if role not in ROLE_NAMES:  # an ensemble member: cls2, cls3...
            name = f"{ROLE_NAMES['cls']} {str(role)[3:]} (ensemble member)"
        parts.append(_model(str(role), entry if isinstance(entry, dict) else {}, name))
    rows_settings = [[k, _text(v)] for k, v in settings.items()]
    parts.append(_table(["setting", "value"], rows_settings, "Analysis settings in effect"))
    return "".join(parts)


ROLE_NAMES = {
    "seg": "segmenter", "cls": "tumour-region classifier", "gate": "whole-slice gate",
    "whole": "whole-slice classifier",  # the cls of a classify-only bundle
}  # fmt: skip


def _model(role: str, entry: dict[str, Any], name: str | None = None) -> str:
    """One model (shown as ``name``, default by role): architecture, classes, preprocessing, and
    the metrics recorded for it on data it never saw (held-out fold or test set)."""
    prep = ", ".join(f"{k}={_text(v)}" for k, v in _dict(entry, "preprocessing").items())
    rows = [
        ("task", str(entry.get("task", "-"))),
        ("architecture", str(_dict(entry, "model").get("name", "-"))),
        ("input channels", str(entry.get("in_channels", "-"))),
        ("classes", ", ".join(map(str, entry.get("classes") or [])) or "-"),
        ("preprocessing", prep or "-"),
        ("trained in", str(entry.get("source", "-"))),
    ]
    metrics = _dict(entry, "metrics")
    numbers = [[str(k), _text(v)] for k, v in metrics.items() if isinstance(v, int | float) and k != "fold"]
    fold = f" (fold {metrics['fold']})" if metrics.get("fold") is not None else ""
    table = _table(["metric", "value"], numbers, f"Held-out metrics{fold}") if numbers else ""
    title = name or ROLE_NAMES.get(role, role)
    return f"<h3>{escape(title)} ({escape(role)})</h3>{_facts(rows)}{table}"


# ---------------------------------------------------------------------------- HTML pieces


def _section(title: str, body: str, page: bool = False) -> str:
    cls = ' class="page"' if page else ""
    return f"<section{cls}><h2>{escape(title)}</h2>{body}</section>\n"


def _facts(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows) + "</dl>"


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    def cell(text: str) -> str:
        numeric = text == "-" or text.replace(".", "", 1).lstrip("-").isdigit()
        return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"

    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table>{cap}<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _dict(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    """``mapping[key]`` when it is a dict, else empty (bundle.json is read, not trusted)."""
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


def _value(value: float | None, fmt: str, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{fmt}}" + (f" {unit}" if unit else "")


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _list(indices: list[int], most: int = 30) -> str:
    shown = ", ".join(map(str, indices[:most]))
    return shown + (f" … ({len(indices) - most} more)" if len(indices) > most else "")


def _hide(text: str, folder: str) -> str:
    """``text`` without ``folder/`` (the folders above the input, which may name the patient)."""
    if folder in ("", ".", os.sep):
        return text
    return text.replace(folder + os.sep, "")
