"""CLI verbs that compare runs and sweep a setting: compare, sweep-roi."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from braintumor.cli.common import app, emit_json, err, out, run_guarded
from braintumor.cli.options import ConfigOpt, DataOpt, FoldsOpt, JsonFlag, OnlyOpt, SetOpt

RunsArg = Annotated[
    list[Path], typer.Argument(help="Run folders (single-fold or CV); a folder of runs expands to them.")
]
TableOpt = Annotated[
    Path | None, typer.Option("--out", help="Also write the table to FILE.md (Markdown) or FILE.csv.")
]
SweepOutOpt = Annotated[Path, typer.Option("--out", help="Sweep folder (one roi-<factor>/ per factor).")]
FactorsOpt = Annotated[str, typer.Option("--factors", help="Comma-separated factors >= 1 and/or 'whole'.")]


def _print_table(rows: list[dict[str, Any]]) -> None:
    from braintumor.reports.compare import display_table

    headers, cells = display_table(rows)
    table = Table(title="Runs")
    for h in headers:
        left = h in ("run", "task", "model", "init", "roi")
        table.add_column(h, justify="left" if left else "right", overflow="fold", no_wrap=h == "run")
    for c in cells:
        table.add_row(*c)
    out.print(table)


@app.command("compare")
def compare(runs: RunsArg, out_file: TableOpt = None, json_out: JsonFlag = False) -> None:
    """One row per run: task, model, init, ROI factor, metrics (mean ± std over CV folds), time, parameters.

    Example:
      braintumor compare runs/k4-scratch runs/k4-pretrained --out docs/k4-compare.md
    """
    from braintumor.reports.compare import compare_runs, write_comparison

    def go() -> None:
        rows = compare_runs(runs)
        if out_file is not None:
            write_comparison(rows, out_file)
        if json_out:
            emit_json({"rows": rows, **({"out": str(out_file)} if out_file else {})})
            return
        _print_table(rows)
        if out_file is not None:
            err.print(f"table written to {out_file}")

    run_guarded(go)


@app.command("sweep-roi")
def sweep_roi(
    out_dir: SweepOutOpt, config: ConfigOpt = None, data: DataOpt = None,
    factors: FactorsOpt = "1.0,1.25,1.5,2.0,3.0,whole", folds: FoldsOpt = None, only: OnlyOpt = None,
    overrides: SetOpt = None, json_out: JsonFlag = False,
) -> None:  # fmt: skip
    """Cross-validate a classifier on tumour crops at each ROI expansion factor, on identical splits.

    'whole' is the whole slice restricted to slices with a tumour mask, so every factor scores the
    same samples. The factor is chosen on each fold's validation patients, not on the test folds.
    Writes sweep.csv, sweep.json (best_factor; best_on_test beside it) and sweep.png.

    Example:
      braintumor sweep-roi --config configs/figshare-roi-cpu.yaml --data DATA/figshare --out runs/roi \\
        --factors 1.0,1.5,2.0,whole --folds 5
    """
    from braintumor.config import load_config
    from braintumor.training.sweep import parse_factors
    from braintumor.training.sweep import sweep_roi as run_sweep

    def go() -> None:
        extra = [*(overrides or []), "train.task=classify"]
        extra += [f"data.path={data}"] if data is not None else []
        extra += [f"data.folds={folds}"] if folds else []
        cfg = load_config(config, extra)
        result = run_sweep(cfg, out_dir, parse_factors(factors), folds=only,
                           trainer_overrides={"enable_progress_bar": not json_out})  # fmt: skip
        if json_out:
            emit_json(result)
            return
        table = Table(title=f"ROI sweep · factor chosen on validation: {result['best_factor']}")
        for h in ("factor", "val accuracy", "test accuracy", "test macro-F1", "n_samples"):
            table.add_column(h, justify="right")
        for r in result["rows"]:
            table.add_row(r["factor"], _mean_std(r["val_accuracy_mean"], r["val_accuracy_std"]),
                          _mean_std(r["accuracy_mean"], r["accuracy_std"]),
                          _mean_std(r["macro_f1_mean"], r["macro_f1_std"]), str(r["n_samples"]))  # fmt: skip
        out.print(table)
        err.print(f"sweep folder: {out_dir} (sweep.csv, sweep.json, sweep.png)")

    run_guarded(go)


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"
