"""CLI verbs that read result files: report (HTML + Markdown) and radiogenomics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from braintumor.cli.common import app, emit_json, err, out, progress_bar, run_guarded
from braintumor.cli.options import JsonFlag

ReportArgs = Annotated[
    list[Path],
    typer.Argument(help="Run, CV run, ROI sweep, radiogenomics or study folders (one report each)."),
]
ReportOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Write here instead of into each folder (one folder: DIR; several: DIR/<name>), "
        "with a copy of the metrics as metrics.json.",
    ),
]
LggDataOpt = Annotated[
    Path, typer.Option("--data", help="LGG kaggle_3m folder (or its data.csv when --masks is given).")
]
MasksOpt = Annotated[
    Path | None,
    typer.Option("--masks", help="Folder of predicted <sample_id>_mask.png (default: the dataset's masks)."),
]
PixelOpt = Annotated[float | None, typer.Option("--pixel-mm", help="In-plane pixel side in mm (adds mm²).")]
SliceOpt = Annotated[
    float | None, typer.Option("--slice-mm", help="Slice spacing in mm (with --pixel-mm: mm³).")
]
RgOutOpt = Annotated[Path, typer.Option("--out", help="Folder for the tables, figure and report.")]
TopOpt = Annotated[int, typer.Option("--top", help="Associations in the box-plot grid and the summary.")]


@app.command("report")
def report(runs: ReportArgs, out_dir: ReportOutOpt = None, json_out: JsonFlag = False) -> None:
    """A self-contained report.html (figures embedded, works offline) and report.md per folder.

    Example:
      braintumor report runs/lgg-unet-cpu runs/figshare-cv --out reports/
    """
    from braintumor.reports.html import write_reports

    def go() -> None:
        written = write_reports(runs, out_dir)
        if json_out:
            emit_json({"reports": written})
            return
        for w in written:
            out.print(
                f"{w['kind']:<13} {w['folder']} -> {w['html']} ({w['figures']} figures)", highlight=False
            )

    run_guarded(go)


@app.command("radiogenomics")
def radiogenomics(
    data: LggDataOpt,
    out_dir: RgOutOpt,
    masks: MasksOpt = None,
    pixel_mm: PixelOpt = None,
    slice_mm: SliceOpt = None,
    top: TopOpt = 9,
    json_out: JsonFlag = False,
) -> None:
    """Tumour shape features per patient tested against the LGG genomic clusters, grade and death.

    Writes features.csv, associations.csv (Mann–Whitney / Kruskal–Wallis / Fisher, BH q-values),
    radiogenomics.json, associations.png and report.html into --out.

    Example:
      braintumor radiogenomics --data ../shared/data/lgg128/kaggle_3m --out runs/radiogenomics
    """
    from braintumor.analysis.radiogenomics import run_radiogenomics, write_radiogenomics
    from braintumor.reports.html import write_report
    from braintumor.reports.radiogenomics import write_association_figure

    def go() -> None:
        with progress_bar("patients", quiet=json_out) as update:
            result = run_radiogenomics(data, masks, pixel_mm, slice_mm, progress=update, top=top)
        files = write_radiogenomics(result, out_dir)
        files["figure"] = str(write_association_figure(out_dir, n=top))
        files["report"] = write_report(out_dir)["html"]
        summary = {**result.summary, "out": str(out_dir), "paths": files}
        if json_out:
            emit_json(summary)
        else:
            _print_summary(summary)

    run_guarded(go)


def _print_summary(summary: dict[str, Any]) -> None:
    if summary.get("warning"):
        err.print(f"[yellow]warning:[/] {summary['warning']}", highlight=False)
    table = Table(
        title=f"Strongest associations ({summary['n_patients']} patients, masks: {summary['masks']})"
    )
    for column in ("feature", "variable", "test", "n", "p", "q"):
        table.add_column(column, justify="left" if column in ("feature", "variable", "test") else "right")
    for row in summary["top"]:
        table.add_row(
            row["feature"], row["variable"], row["test"], str(row["n"]), f"{row['p']:.3g}", f"{row['q']:.3g}"
        )
    out.print(table)
    counts = (
        f"{summary['n_significant']} of {summary['n_tests_run']} tests at q < {summary['significance_q']}"
    )
    out.print(f"{counts}; files in {summary['out']}", highlight=False)
