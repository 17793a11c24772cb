"""CLI verbs on datasets: ``data inspect``, ``data phantoms``, ``data split``, ``data dedup``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from braintumor.cli.common import app, emit_json, out, progress_bar, run_guarded
from braintumor.cli.options import JsonFlag
from braintumor.run_dir import RunDir

data_app = typer.Typer(help="Inspect, generate and split datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder (format detected from its layout).")],
    format: Annotated[str, typer.Option(help="Loader name, or auto.")] = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Counts per class and patient, tumour slices, image sizes and every bad file.

    Example: braintumor data inspect ../shared/data/lgg/kaggle_3m --json
    """
    from braintumor.data.inspect import inspect_dataset

    def go() -> None:
        with progress_bar("decoding", quiet=json_out) as update:
            report = inspect_dataset(path, format, progress=update)
        emit_json(report.to_dict()) if json_out else print_inspect(report.to_dict())
        if report.n_samples == 0:
            raise typer.Exit(1)

    run_guarded(go)


def print_inspect(r: dict[str, Any]) -> None:
    table = Table(title=f"{r['path']} ({r['format']})", show_header=False)
    for key in ("n_samples", "n_patients", "n_with_mask", "n_with_tumour"):
        table.add_row(key, str(r[key]))
    table.add_row("patient ids", "yes" if r["patient_ids_known"] else "no (each image is its own patient)")
    table.add_row("per class", ", ".join(f"{k}: {v}" for k, v in r["per_class"].items()))
    if r["per_split"]:
        table.add_row("per split", ", ".join(f"{k}: {v}" for k, v in r["per_split"].items()))
    table.add_row("image sizes", ", ".join(f"{k} ({v})" for k, v in r["image_sizes"].items()))
    table.add_row("problems", str(len(r["problems"])))
    out.print(table)
    for p in r["problems"]:
        out.print(f"  [yellow]problem[/] {p['file']}: {p['problem']}", highlight=False)


@data_app.command("phantoms")
def data_phantoms(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write images/, masks/ and index.csv to.")],
    n: Annotated[int, typer.Option("--n", help="Number of patients.")] = 40,
    slices: Annotated[int, typer.Option(help="Slices per patient.")] = 6,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    channels: Annotated[int, typer.Option(help="1 (T1-CE-like) or 3 (LGG-like).")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    json_out: JsonFlag = False,
) -> None:
    """Write a seeded synthetic dataset of brain MRI slices with tumour masks.

    Example: braintumor data phantoms runs/phantoms --n 40 --size 64
    """
    from braintumor.data.phantom import generate_phantoms
    from braintumor.io_utils import prepare_out_dir

    def go() -> None:
        prepare_out_dir(out_dir, "OUT_DIR")
        index = generate_phantoms(out_dir, n_patients=n, slices_per_patient=slices, size=size,
                                  channels=channels, seed=seed)  # fmt: skip
        summary = {"path": str(out_dir), "n_samples": len(index), "n_patients": len(index.patients),
                   "per_class": index.class_counts()}  # fmt: skip
        emit_json(summary) if json_out else out.print(summary)

    run_guarded(go)


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="splits.json to write.")] = Path(RunDir.SPLITS),
    folds: Annotated[int, typer.Option(help="k of the patient-level k-fold.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    val_fraction: Annotated[float, typer.Option(help="Share of training patients for validation.")] = 0.15,
    method: Annotated[str, typer.Option(help="auto, official, kfold or predefined.")] = "auto",
    json_out: JsonFlag = False,
) -> None:
    """Patient-level stratified k-fold (or the dataset's official folds), saved as JSON.

    Example: braintumor data split ../shared/data/figshare --out runs/figshare-splits.json
    """
    from braintumor.data.loaders import load_dataset
    from braintumor.data.splits import make_splits

    def go() -> None:
        index = load_dataset(path)
        splits = make_splits(index, k=folds, seed=seed, val_fraction=val_fraction, method=method)
        splits.save(out)
        summary = {"path": str(out), "method": splits.method, "folds": [
            {part: len(ids) for part, ids in fold.items()} for fold in splits.folds]}  # fmt: skip
        emit_json(summary) if json_out else out_print(summary)

    run_guarded(go)


def out_print(obj: Any) -> None:
    out.print(obj)


@data_app.command("dedup")
def data_dedup(
    path: Annotated[Path, typer.Argument(help="Class-folder dataset with Training/ and Testing/.")],
    against: Annotated[
        Path | None, typer.Option(help="Another dataset whose images may be copied in this one (figshare).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Least high-pass thumbnail correlation of a copy (data/dedup.py).")
    ] = 0.90,
    json_out: JsonFlag = False,
) -> None:
    """Count test images with a copy in training: exact files, re-encodings, left-right mirrors,
    and with --against the images that copy another dataset's slices.

    Example: braintumor data dedup ../shared/data/kaggle4 --against ../shared/data/figshare
    """
    from braintumor.data.dedup import find_duplicates
    from braintumor.data.loaders import load_dataset

    def go() -> None:
        index = load_dataset(path)
        reference = load_dataset(against) if against is not None else None
        with progress_bar("decoding", quiet=json_out) as update:
            report = find_duplicates(index, threshold, progress=update, reference=reference)
        if json_out:
            emit_json(report.to_dict())
            return
        out.print(
            f"{report.n_test_with_duplicate} of {report.n_test} test images have a copy in training "
            f"(correlation >= {threshold}; {report.kinds}); {report.n_cross_class} across classes"
        )
        out.print(report.per_class)
        if report.reference:
            r = report.reference
            out.print(f"copies of {r['datasets']}: {r['n_train_copies']} of {report.n_train} training and "
                      f"{r['n_test_copies']} of {report.n_test} test images")  # fmt: skip

    run_guarded(go)
