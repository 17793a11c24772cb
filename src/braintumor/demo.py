"""The main job on the embedded default: phantoms -> inspect -> train a U-Net and a classifier on
patient-level splits -> evaluate on unseen patients -> overlays, curves and a confusion matrix."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from braintumor.io_utils import atomic_write_json

SEGMENT = [
    "model.name=unet", "model.kwargs={init_features: 16}", "train.task=segment", "train.epochs=25",
    "train.lr=0.003", "train.tumour_fraction=0.5", "train.loss=dice-bce",
]  # fmt: skip
CLASSIFY = [
    "model.name=cnn-small", "train.task=classify", "train.loss=ce", "train.epochs=30", "train.lr=0.003",
]  # fmt: skip


def run_demo(out_dir: Path, json_out: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run the demo into ``out_dir`` and return (and print) its summary."""
    from braintumor.config import load_config
    from braintumor.data.inspect import inspect_dataset
    from braintumor.data.phantom import ensure_phantoms
    from braintumor.training.runner import train_fold

    console = console or Console(stderr=json_out)
    start = time.perf_counter()
    data_dir = out_dir / "phantoms"
    ensure_phantoms(data_dir, n_patients=48, slices_per_patient=6, size=64, channels=1, seed=0)
    report = inspect_dataset(data_dir)
    _print_data(console, data_dir, report.to_dict())
    common = [f"data.path={data_dir}", "data.image_size=64", "data.normalization=percentile-image",
              "data.folds=4", "train.batch_size=16"]  # fmt: skip
    quiet = {"enable_progress_bar": not json_out}
    console.print("[bold]training a U-Net[/] (fold 0 of 4; test patients never seen in training)")
    seg = train_fold(load_config(None, [*common, *SEGMENT]), out_dir / "segment", trainer_overrides=quiet)
    console.print("[bold]training a classifier[/] (glioma / meningioma / no tumour / pituitary)")
    cls = train_fold(load_config(None, [*common, *CLASSIFY]), out_dir / "classify", trainer_overrides=quiet)
    summary = {
        "data": str(data_dir),
        "inspect": report.to_dict(),
        "segmentation": {
            k: seg[k] for k in ("dice_per_patient_mean", "dice_per_slice_mean", "iou", "n_patients")
        },
        "classification": {k: cls[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "confusion")},
        "figures": {
            "overlays": str(out_dir / "segment" / "overlays.png"),
            "curves": str(out_dir / "segment" / "curves.png"),
            "confusion": str(out_dir / "classify" / "confusion.png"),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    _print_results(console, summary, cls["confusion"], report.per_class)
    if json_out:
        print(json.dumps(summary))
    return summary


def _print_data(console: Console, data_dir: Path, r: dict[str, Any]) -> None:
    console.print(f"[bold]braintumor demo[/] — phantom dataset at {data_dir}")
    console.print(
        f"  {r['n_samples']} slices of {r['n_patients']} patients, {r['n_with_tumour']} with tumour"
    )
    console.print("  per class: " + ", ".join(f"{k} {v}" for k, v in r["per_class"].items()))
    console.print(f"  problems: {len(r['problems'])}; image sizes: {r['image_sizes']}")


def _print_results(
    console: Console, s: dict[str, Any], confusion: list[list[int]], classes: dict[str, int]
) -> None:
    seg, cls = s["segmentation"], s["classification"]
    console.print(
        f"[bold]segmentation[/] on {seg['n_patients']} unseen patients: per-patient Dice "
        f"{seg['dice_per_patient_mean']:.3f}, per-slice Dice {seg['dice_per_slice_mean']:.3f}"
    )
    console.print(f"[bold]classification[/]: accuracy {cls['accuracy']:.3f}, macro-F1 {cls['macro_f1']:.3f}")
    table = Table(title="confusion matrix (rows: truth, columns: prediction)")
    names = list(classes)
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, confusion, strict=True):
        table.add_row(name, *(str(v) for v in row))
    console.print(table)
    for label, path in s["figures"].items():
        console.print(f"  {label}: {path}")
    console.print(f"  done in {s['seconds']} s")
