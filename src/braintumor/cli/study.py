"""CLI verb that runs a whole study from one config: experiment run."""

from __future__ import annotations

import sys
from contextlib import nullcontext, redirect_stdout
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from braintumor.cli.common import app, emit_json, err, out, run_guarded
from braintumor.cli.options import JsonFlag, MaskFloorOpt, OutOpt, mask_floor
from braintumor.runtime.fusion import MASK_CONFIDENCE_FLOOR

experiment_app = typer.Typer(
    help="Run a whole study (training, CV, evaluation, report) from one study config.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")

StudyArg = Annotated[Path, typer.Argument(help="Study config (configs/studies/<study>.yaml).")]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="Smoke run: the study's quick overrides (1 epoch, small samples).")
]
StudyDataOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--data", help="PATH for the study's default dataset, or NAME=PATH for another (repeatable)."
    ),
]


@experiment_app.command("run")
def experiment_run(
    study: StudyArg,
    out_dir: OutOpt,
    quick: QuickOpt = False,
    data: StudyDataOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Every step of a study in order (train, cv, sweep-roi, pipeline, fuse, radiogenomics, compare), then
    RUN/study.json, RUN/summary.md and RUN/report.html. Finished steps are reused on a rerun, so a
    killed study resumes where it stopped.

    Example:
      braintumor experiment run configs/studies/figshare-segment-classify.yaml --out runs/fsc --quick
    """
    import os

    from braintumor.experiments import find_shared_data, load_study, parse_data_options, run_study

    def go() -> None:
        spec = load_study(study)
        shared = find_shared_data([spec.path.parent, Path.cwd()], os.environ.get("BRAINTUMOR_SHARED_DATA"))
        replacements = parse_data_options(data or [], spec)
        err.print(
            f"[bold]study {spec.name}[/] ({len(spec.steps)} steps{', quick' if quick else ''}) -> {out_dir}"
        )
        with redirect_stdout(sys.stderr) if json_out else nullcontext():  # stdout: one JSON object only
            record = run_study(
                spec, out_dir, quick=quick, data=replacements, shared=shared,
                trainer={"enable_progress_bar": not json_out}, log=_log,
            )  # fmt: skip
        if json_out:
            emit_json(_json_summary(record))
            return
        _print_summary(record)

    run_guarded(go)


def _log(line: str) -> None:
    err.print(line, highlight=False)


def _json_summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "study",
        "file",
        "out",
        "quick",
        "status",
        "seconds",
        "datasets",
        "anchors",
        "table",
        "report",
        "summary",
    )
    fields = ("name", "kind", "status", "seconds", "protocol", "data", "metrics", "report")
    steps = [{k: s.get(k) for k in fields} for s in record["steps"]]
    return {
        **{k: record.get(k) for k in keys},
        "study_json": str(Path(record["out"]) / "study.json"),
        "steps": steps,
    }


def _print_summary(record: dict[str, Any]) -> None:
    from braintumor.reports.study import summary_table

    summary = summary_table(record)
    table = Table(title=f"Study {record['study']}{' (quick: smoke numbers)' if record['quick'] else ''}")
    for h in summary.headers:
        table.add_column(h, overflow="fold")
    for row in summary.rows:
        table.add_row(*row)
    out.print(table)
    err.print(f"study.json, summary.md and report.html in {record['out']} ({record['seconds']:.0f} s)")


@experiment_app.command("pipeline")
def experiment_pipeline(
    seg: Annotated[Path, typer.Option("--seg", help="Segmentation run (CV folder or single fold).")],
    cls: Annotated[
        list[Path],
        typer.Option(
            "--cls",
            help="ROI classification run on the same splits; repeat it for an ensemble (as `bundle create`); "
            "a sweep-roi folder is the ensemble of its arms, the chosen factor first.",
        ),
    ],
    out_dir: OutOpt,
    postprocess: Annotated[
        bool | None,
        typer.Option(
            "--postprocess/--no-postprocess",
            help="Force largest component + fill holes on or off (default: as the seg run was evaluated).",
        ),
    ] = None,
    fuse_weight: Annotated[
        float | None,
        typer.Option(
            "--fuse-weight",
            help="Fuse the classifier with a region-feature forest, as `bundle create --fuse-forest`: "
            "the CNN's share (0.5).",
        ),
    ] = None,
    gate: Annotated[
        Path | None,
        typer.Option("--gate", help="Whole-slice tumour/no-tumour run that vetoes slices, as in a bundle."),
    ] = None,
    mask_confidence_floor: MaskFloorOpt = str(MASK_CONFIDENCE_FLOOR),
    json_out: JsonFlag = False,
) -> None:
    """Segment -> crop the predicted tumour -> classify, scored on each fold's unseen patients through
    the bundle `bundle create` would make from the runs (what `analyze` ships; the study's `pipeline`
    step on its own). Writes OUT/cv_metrics.json and per fold metrics, per-slice/per-patient tables
    and a confusion matrix.

    Example:
      braintumor experiment pipeline --seg runs/figshare-unet-cpu --cls runs/figshare-roi-cpu --out runs/pipe
    """
    from braintumor.experiments.pipeline_eval import evaluate_pipeline

    def go() -> None:
        floor = mask_floor(mask_confidence_floor or "off")
        summary = evaluate_pipeline(
            seg, cls, out_dir, postprocess=postprocess, fuse_weight=fuse_weight, gate=gate,
            mask_confidence_floor=floor,
        )  # fmt: skip
        if json_out:
            emit_json({"out": str(out_dir), **summary})
            return
        table = Table(title=f"segment -> crop -> classify ({summary['n_folds']} folds) -> {out_dir}")
        for h in ("metric", "mean", "std"):
            table.add_column(h)
        for key, value in summary["mean"].items():
            std = summary["std"].get(key)
            table.add_row(key, "-" if value is None else f"{value:.4f}", "-" if std is None else f"{std:.4f}")
        out.print(table)

    run_guarded(go)


@experiment_app.command("fuse")
def experiment_fuse(
    cls: Annotated[
        list[Path],
        typer.Option(
            "--cls",
            help="Tumour-region classification run (CV folder or fold); repeat it to average several "
            "runs on the same splits as one CNN (e.g. the arms of a sweep-roi).",
        ),
    ],
    out_dir: OutOpt,
    weight: Annotated[float, typer.Option(help="The CNN's share of the averaged probabilities.")] = 0.5,
    trees: Annotated[int, typer.Option(help="Trees in the random forest.")] = 1000,
    json_out: JsonFlag = False,
) -> None:
    """Average a tumour-region CNN's probabilities with those of a random forest on where the tumour
    is, how large and how bright (fitted per fold on the CNN's own training patients), and score the
    CNN, the forest and the fusion on each fold's unseen patients.

    Example:
      braintumor experiment fuse --cls runs/figshare-roi-cpu --out runs/figshare-roi-fused
      braintumor experiment fuse --cls runs/sweep/roi-1.5 --cls runs/sweep/roi-whole --out runs/multiscale
    """
    from braintumor.experiments.fusion import fuse_run

    def go() -> None:
        summary = fuse_run(cls, out_dir, weight=weight, trees=trees)
        if json_out:
            emit_json({"out": str(out_dir), **summary})
            return
        table = Table(title=f"CNN + region-feature forest ({summary['n_folds']} folds) -> {out_dir}")
        for h in ("metric", "mean", "std"):
            table.add_column(h)
        for key, value in summary["mean"].items():
            table.add_row(key, f"{value:.4f}", f"{summary['std'][key]:.4f}")
        out.print(table)

    run_guarded(go)
