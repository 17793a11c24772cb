"""Predict many files; one failed file never stops the batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from braintumor.inference.predict import Predictor
from braintumor.io_utils import atomic_write, atomic_write_json


def unique_stems(paths: Sequence[Path]) -> list[str]:
    """Output names: each file's stem, suffixed ``_2``, ``_3``... where files in different folders
    share one, so that no prediction overwrites another."""
    taken: set[str] = set()
    names = []
    for path in paths:
        name, k = Path(path).stem, 2
        while name in taken:
            name, k = f"{Path(path).stem}_{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


def predict_files(weights: Path, paths: Sequence[Path], out_dir: Path) -> list[dict[str, Any]]:
    """Run the predictor over ``paths``; writes ``predictions.csv`` and ``predictions.json``."""
    predictor = Predictor(weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = unique_stems(paths)
    results = [asdict(predictor.predict_file(p, out_dir, name)) for p, name in zip(paths, names, strict=True)]
    rows = [{k: v for k, v in r.items() if k not in ("probabilities", "outputs")}
            | {f"prob_{c}": p for c, p in r["probabilities"].items()} for r in results]  # fmt: skip
    frame = pd.DataFrame(rows)
    atomic_write(out_dir / "predictions.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write_json(out_dir / "predictions.json", {"results": results})
    return results
