"""The main job on the embedded default: generate phantoms, inspect them, summarise."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from braintumor.io_utils import atomic_write_json


def run_demo(out_dir: Path, json_out: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run the demo into ``out_dir`` and return (and print) its summary."""
    from braintumor.data.cache import Preprocessing, build_cache
    from braintumor.data.inspect import inspect_dataset
    from braintumor.data.phantom import generate_phantoms
    from braintumor.data.splits import make_splits

    console = console or Console()
    start = time.perf_counter()
    data_dir = out_dir / "phantoms"
    index = generate_phantoms(data_dir, n_patients=40, slices_per_patient=6, size=64, channels=1, seed=0)
    report = inspect_dataset(data_dir)
    splits = make_splits(index, k=5, seed=42, val_fraction=0.15)
    splits.save(out_dir / "splits.json")
    store = build_cache(index, Preprocessing(image_size=64, normalization="percentile-image"))
    summary = {
        "data": str(data_dir),
        "inspect": report.to_dict(),
        "splits": {"method": splits.method, "folds": len(splits.folds)},
        "cache": {"path": str(store.path), "shape": list(store.images.shape)},
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    if json_out:
        print(json.dumps(summary))
    else:
        _print_summary(console, summary)
    return summary


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    r = summary["inspect"]
    console.print(f"[bold]braintumor demo[/] — phantom dataset at {summary['data']}")
    console.print(
        f"  {r['n_samples']} slices of {r['n_patients']} patients, {r['n_with_tumour']} with tumour"
    )
    console.print("  per class: " + ", ".join(f"{k} {v}" for k, v in r["per_class"].items()))
    console.print(f"  problems: {len(r['problems'])}; image sizes: {r['image_sizes']}")
    console.print(f"  splits: {summary['splits']['method']}, {summary['splits']['folds']} folds")
    console.print(f"  cache: {summary['cache']['shape']} at {summary['cache']['path']}")
    console.print(f"  done in {summary['seconds']} s")
