"""Score a segmentation run through the code that ships: the bundle made from the run
(:func:`~braintumor.bundle.create.from_run`) analysing the held-out patients' files with
:class:`~braintumor.inference.analyzer.Analyzer`, exactly as ``braintumor analyze`` would.

Each held-out patient of a volume dataset (every slice has a slice number, as LGG) is one volume
input, its slice files in slice order (what ``analyze`` makes of a patient folder of numbered
slices); otherwise every image is its own input. Predicted masks are compared with the
ground-truth masks at the files' own size; the metrics are those of ``braintumor evaluate``
(:class:`~braintumor.evaluation.SegmentationAccumulator`), written to ``<out>/shipped/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.bundle.create import from_run
from braintumor.bundle.load import Bundle
from braintumor.data.index import SampleIndex
from braintumor.data.readers import read_mask
from braintumor.errors import ConfigError
from braintumor.evaluation import SegmentationAccumulator
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import make_backend
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.results import AnalysisResult
from braintumor.inference.sources import InputItem, Inputs
from braintumor.io_utils import atomic_write, atomic_write_json, finite, prepare_out_dir
from braintumor.run_dir import RunDir

SCORING_PRECISION = "fp32"
"""The networks run as stored (float32; ``analyze --precision fp32`` reproduces a score exactly),
so a score does not depend on whether the CPU runs bfloat16 (``--precision auto`` there)."""


@dataclass
class ShippedPredictions:
    """Per held-out input: its analysis, and the rows of the index it covers (slice order)."""

    results: list[AnalysisResult] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)


def held_out_inputs(
    index: SampleIndex, groups: set[str], column: str
) -> tuple[list[InputItem], list[list[int]]]:
    """One input per held-out patient volume (slice files in slice order), else one per image."""
    frame = index.frame
    chosen = frame[frame[column].astype(str).isin(groups)]
    volumetric = bool((frame["slice"] >= 0).all())
    items: list[InputItem] = []
    rows: list[list[int]] = []
    for pid, part in chosen.groupby("patient_id", sort=True):
        ordered = part.sort_values("slice", kind="stable") if volumetric else part
        if volumetric and len(ordered) > 1:
            files = tuple(Path(p) for p in ordered["image"])
            items.append(InputItem(str(pid), files, name=str(pid), slice_series=True))
            rows.append(list(ordered.index))
            continue
        for r, row in ordered.iterrows():
            items.append(InputItem(str(row["image"]), (Path(row["image"]),), name=str(row["sample_id"])))
            rows.append([int(r)])
    return items, rows


def predict_as_shipped(
    bundle: Bundle, index: SampleIndex, groups: set[str], column: str = "patient_id", backend: str = "torch"
) -> ShippedPredictions:
    """Analyse the held-out inputs with ``bundle`` (see :func:`held_out_inputs`)."""
    analyzer = Analyzer(
        bundle, make_backend(bundle, backend, SCORING_PRECISION), AnalysisSettings.for_bundle(bundle)
    )
    items, rows = held_out_inputs(index, groups, column)
    results = analyzer.analyze_files(Inputs(items))
    failed = [r for r in results if not r.ok]
    if failed:
        raise ConfigError(f"{failed[0].input}: the shipped analysis failed ({failed[0].error})")
    return ShippedPredictions(results, rows)


def score(index: SampleIndex, predictions: ShippedPredictions) -> SegmentationAccumulator:
    """Per-slice and per-patient segmentation metrics of the shipped masks against the truth."""
    frame = index.frame
    volumetric = bool((frame["slice"] >= 0).all())
    acc = SegmentationAccumulator(store_masks=volumetric)
    for result, rows in zip(predictions.results, predictions.rows, strict=True):
        preds, truths = [], []
        assert result.shape is not None  # a successful analysis knows its input's shape
        shape = (result.shape[1], result.shape[2])
        for s, r in zip(result.slices, rows, strict=True):
            truths.append(
                read_mask(frame.at[r, "mask"], shape) if frame.at[r, "mask"] else np.zeros(shape, np.uint8)
            )
            preds.append(s.mask if s.mask is not None else np.zeros(shape, np.uint8))
        acc.add(
            np.stack(preds),
            np.stack(truths),
            [str(frame.at[r, "patient_id"]) for r in rows],
            [str(frame.at[r, "sample_id"]) for r in rows],
            [float(frame.at[r, "slice"]) for r in rows],
        )
    return acc


def evaluate_as_shipped(
    run_dir: str | Path, data_path: str | Path | None = None, out_dir: str | Path | None = None,
    backend: str = "torch",
) -> dict[str, Any]:  # fmt: skip
    """Score a segmentation run's held-out patients (those of ``braintumor evaluate``) through the
    bundle made from the run; tables and ``metrics.json`` go to ``<out_dir or run_dir>/shipped``."""
    from dataclasses import replace

    from braintumor.config import load_config
    from braintumor.training.data import load_index
    from braintumor.training.evaluate import held_out_groups

    run_dir = Path(run_dir)
    cfg = load_config(RunDir(run_dir).config)
    if cfg.train.task != "segment":
        raise ConfigError(
            f"{run_dir}: a {cfg.train.task} run; --as-shipped scores segmentation runs (a classifier "
            "ships inside a bundle with a segmenter: score it with `braintumor experiment pipeline`)"
        )
    trained_on = cfg.data
    if data_path is not None:
        cfg = replace(cfg, data=cfg.data.for_other_data(data_path))
    index = load_index(cfg.data, run_dir)
    held_out = held_out_groups(run_dir, cfg, trained_on, index)
    bundle = from_run(run_dir)
    predictions = predict_as_shipped(bundle, index, held_out.scored, held_out.column, backend)
    acc = score(index, predictions)
    target = RunDir(Path(out_dir) if out_dir else run_dir).shipped
    prepare_out_dir(target.path)
    per_slice, per_patient = acc.per_slice(), acc.per_patient()
    _write_csv(per_slice, target.per_slice)
    _write_csv(per_patient, target.per_patient)
    metrics: dict[str, Any] = finite({
        "task": "segment", "fold": held_out.fold, "engine": "shipped", "external": not held_out.own_data,
        "analysis": bundle.analysis, **acc.summary(), "per_patient": per_patient.to_dict("records"),
    })  # fmt: skip
    atomic_write_json(target.metrics, metrics)
    return metrics


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
