"""The main job on the embedded default, end to end on seeded phantoms:

phantoms -> inspect -> train a U-Net, a tumour-region classifier and a whole-slice gate on
patient-level splits -> evaluate on unseen patients -> bundle -> analyse unseen slices (with
Grad-CAM) -> HTML reports. ``data`` points it at a real dataset instead (figshare layout: masks and
tumour classes).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from braintumor.io_utils import atomic_write_json, json_text
from braintumor.run_dir import RunDir

SEGMENT = [
    "model.name=unet", "model.kwargs={init_features: 16}", "train.task=segment", "train.epochs=40",
    "train.lr=0.002", "train.tumour_fraction=0.5", "train.loss=dice-bce",
]  # fmt: skip
CLASSIFY = [
    "model.name=cnn-small",
    "train.task=classify",
    "train.loss=ce",
    "train.epochs=30",
    "train.lr=0.003",
]
ROI = [*CLASSIFY, "data.roi_expansion=1.5"]


QUICK = ["train.epochs=1", "train.precision=32-true"]


def run_demo(
    out_dir: Path,
    json_out: bool = False,
    console: Console | None = None,
    data: Path | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the demo into ``out_dir`` and return (and print) its summary.

    ``quick`` trains one epoch on 32 px phantoms (the end-to-end smoke test).
    """
    from braintumor.config import load_config
    from braintumor.data.inspect import inspect_dataset
    from braintumor.data.phantom import ensure_phantoms
    from braintumor.training.runner import train_fold

    console = console or Console(stderr=json_out)
    start = time.perf_counter()
    data_dir = data or out_dir / "phantoms"
    if data is None:
        n, side = (16, 32) if quick else (48, 64)
        ensure_phantoms(data_dir, n_patients=n, slices_per_patient=6, size=side, channels=1, seed=0)
    report = inspect_dataset(data_dir)
    _print_data(console, data_dir, report.to_dict())
    size = (32 if quick else 64) if data is None else 128
    common = [f"data.path={data_dir}", f"data.image_size={size}", "data.normalization=percentile-image",
              "data.folds=4", "train.batch_size=16"]  # fmt: skip
    quiet = {"enable_progress_bar": not json_out}
    runs = {"segment": SEGMENT, "roi-classify": ROI, "gate-classify": CLASSIFY}
    if data is None:  # the gate learns what each slice shows, on the segmenter's patient split
        runs["gate-classify"] = [*CLASSIFY, f"data.path={slice_label_index(data_dir)}"]
    metrics = {}
    for name, overrides in runs.items():
        console.print(f"[bold]training {name}[/] (fold 0 of 4; test patients never seen in training)")
        shared_splits = RunDir(out_dir / "segment").splits
        if name != "segment" and shared_splits.is_file() and not RunDir(out_dir / name).splits.exists():
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(shared_splits, RunDir(out_dir / name).splits)
        metrics[name] = train_fold(
            load_config(None, [*common, *overrides]), out_dir / name, trainer_overrides=quiet
        )
    analysis = _bundle_and_analyze(out_dir, data_dir, console)
    reports = _reports(out_dir, list(runs))
    summary = {
        "data": str(data_dir),
        "inspect": report.to_dict(),
        "segmentation": _pick(
            metrics["segment"], ("dice_per_patient_mean", "dice_per_slice_mean", "iou", "n_patients")
        ),
        "roi_classification": _pick(metrics["roi-classify"], ("accuracy", "macro_f1", "confusion")),
        "gate_classification": _pick(metrics["gate-classify"], ("accuracy", "macro_f1", "confusion")),
        "analysis": analysis,
        "reports": reports,
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    _print_results(console, summary)
    if json_out:
        print(json_text(summary))
    return summary


def slice_label_index(data_dir: Path) -> Path:
    """``data_dir/slice_labels.csv``: the phantom index with every tumour-free slice labelled
    ``notumor``.

    Phantom labels are per patient, so the outer slices of a tumour patient carry its tumour class
    while showing no tumour; a whole-slice classifier (the gate) is trained on what each slice shows.
    """
    from braintumor.data.index import SampleIndex
    from braintumor.data.readers import read_mask

    index = SampleIndex.load(data_dir / "index.csv")
    frame = index.frame.copy()
    empty = [not read_mask(path).any() for path in frame["mask"]]
    frame.loc[empty, "label"] = "notumor"
    frame["label_index"] = [index.classes.index(label) for label in frame["label"]]
    target = data_dir / "slice_labels.csv"
    SampleIndex(frame, index.classes, index.patient_ids_known).save(target)
    return target


def _pick(metrics: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in keys}


def _bundle_and_analyze(out_dir: Path, data_dir: Path, console: Console) -> dict[str, Any]:
    """Bundle the three runs and analyse the held-out patients' first slices with Grad-CAM."""
    from braintumor.bundle.create import create_bundle
    from braintumor.data.splits import Splits
    from braintumor.inference.analyzer import Analyzer

    bundle = create_bundle(out_dir / "segment", out_dir / "roi-classify", out_dir / "bundle",
                           gate=out_dir / "gate-classify", name="demo", overwrite=True,
                           command="braintumor demo", data=f"phantoms at {data_dir}")  # fmt: skip
    splits = Splits.load(RunDir(out_dir / "segment").splits)
    test = set(splits.folds[0]["test"])
    middle = [p for p in sorted((data_dir / "images").glob("*")) if p.stem.rsplit("_", 1)[0] in test]
    images = [p for p in middle if p.stem.rsplit("_", 1)[1] in ("3", "4")][:8]  # mid-volume slices
    console.print(
        f"[bold]analysing[/] {len(images)} unseen slices with the bundle (segment -> crop -> classify)"
    )
    analyzer = Analyzer.from_bundle(bundle)
    results = analyzer.analyze_files(images, out_dir / "analysis", gradcam=True, overwrite=True)
    for path in sorted((out_dir / "analysis").rglob("*gradcam*.png"))[:4]:
        shutil.copy(path, RunDir(out_dir / "roi-classify").gradcam(path.name))
    keys = ("input", "ok", "tumour", "class", "area_px")
    rows = [{k: r.to_dict().get(k) for k in keys} for r in results]
    return {"bundle": str(bundle), "out": str(out_dir / "analysis"), "n": len(rows), "results": rows}


def _reports(out_dir: Path, names: list[str]) -> dict[str, str]:
    from braintumor.reports.html import write_report

    return {name: str(write_report(out_dir / name)["html"]) for name in names}


def _print_data(console: Console, data_dir: Path, r: dict[str, Any]) -> None:
    console.print(f"[bold]braintumor demo[/] — dataset at {data_dir}")
    console.print(
        f"  {r['n_samples']} slices of {r['n_patients']} patients, {r['n_with_tumour']} with tumour"
    )
    console.print("  per class: " + ", ".join(f"{k} {v}" for k, v in r["per_class"].items()))
    console.print(f"  problems: {len(r['problems'])}; image sizes: {r['image_sizes']}")


def _print_results(console: Console, s: dict[str, Any]) -> None:
    seg, roi, gate = s["segmentation"], s["roi_classification"], s["gate_classification"]
    console.print(
        f"[bold]segmentation[/] on {seg['n_patients']} unseen patients: per-patient Dice "
        f"{seg['dice_per_patient_mean']:.3f}, per-slice Dice {seg['dice_per_slice_mean']:.3f}"
    )
    console.print(
        f"[bold]tumour-region classification[/]: accuracy {roi['accuracy']:.3f}, "
        f"macro-F1 {roi['macro_f1']:.3f}"
    )
    console.print(
        f"[bold]whole-slice gate[/]: accuracy {gate['accuracy']:.3f}, macro-F1 {gate['macro_f1']:.3f}"
    )
    _print_confusion(console, gate["confusion"], s["inspect"]["per_class"])
    for r in s["analysis"]["results"]:
        verdict = f"{r['class']} ({r['area_px']} px)" if r["tumour"] else "no tumour" if r["ok"] else "failed"
        console.print(f"  {Path(r['input']).name}: {verdict}")
    console.print(f"  analysis outputs: {s['analysis']['out']}")
    for name, path in s["reports"].items():
        console.print(f"  report ({name}): {path}")
    console.print(f"  done in {s['seconds']} s")


def _print_confusion(console: Console, confusion: list[list[int]], classes: dict[str, int]) -> None:
    from rich.table import Table

    table = Table(title="whole-slice confusion matrix, unseen patients (rows: truth, columns: prediction)")
    table.add_column("")
    for name in classes:
        table.add_column(name, justify="right")
    for name, row in zip(classes, confusion, strict=True):
        table.add_row(name, *(str(v) for v in row))
    console.print(table)
