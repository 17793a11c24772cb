"""Predict many files; one failed file never stops the batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from braintumor.inference.predict import Predictor
from braintumor.io_utils import atomic_write, atomic_write_json, prepare_out_dir, unique_name


def predict_files(weights: Path, paths: Sequence[Path], out_dir: Path) -> dict[str, Any]:
    """Run the predictor over ``paths``; writes ``predictions.csv`` and ``predictions.json``, and
    returns what the latter holds: ``results`` per file and the ``evaluation`` settings used."""
    predictor = Predictor(weights)
    prepare_out_dir(out_dir)
    taken: set[str] = set()
    results = [asdict(predictor.predict_file(p, out_dir, unique_name(Path(p).stem, taken))) for p in paths]
    rows = [{k: v for k, v in r.items() if k not in ("probabilities", "outputs")}
            | {f"prob_{c}": p for c, p in r["probabilities"].items()} for r in results]  # fmt: skip
    frame = pd.DataFrame(rows)
    atomic_write(out_dir / "predictions.csv", lambda tmp: frame.to_csv(tmp, index=False))
    summary = {"results": results, "evaluation": asdict(predictor.evaluation)}
    atomic_write_json(out_dir / "predictions.json", summary)
    return summary
