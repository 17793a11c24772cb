"""Fold bookkeeping of finished runs, and out-of-fold masks predicted by the code that ships.

:func:`write_out_of_fold_masks` segments each fold's held-out patients with the bundle made from
that fold's run (:func:`~braintumor.bundle.create.from_run`, analysed as ``braintumor analyze``
does: :func:`~braintumor.experiments.shipped.predict_as_shipped`), so radiogenomics reads the masks
a user of the bundle would get, at each file's own size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from braintumor.errors import DataError
from braintumor.run_dir import RunDir


def fold_runs(folder: str | Path) -> dict[int, Path]:
    """Fold number -> run folder: the ``fold<k>/`` of a CV run, or a single-fold run itself.

    Raises:
        DataError: no finished run (``metrics.json``) in the folder.
    """
    import json

    folder = Path(folder)
    if RunDir(folder).metrics.is_file():
        return {int(json.loads(RunDir(folder).metrics.read_text()).get("fold", 0)): folder}
    runs = {k: fold.path for k, fold in RunDir(folder).folds().items()}
    runs = {k: p for k, p in sorted(runs.items()) if RunDir(p).metrics.is_file()}
    if not runs:
        raise DataError(folder, "holds no finished run (metrics.json or fold<k>/metrics.json)")
    return runs


def fold_parts(run_dir: Path) -> tuple[str, dict[str, set[str]]]:
    """(the index column its splits group by, ``{"train", "val", "test"}`` groups) of a run's fold
    (its ``splits.json`` and ``data.fold``)."""
    from braintumor.config import load_config
    from braintumor.data.splits import Splits

    splits = Splits.load(RunDir(run_dir).splits)
    part = splits.folds[splits.check_fold(load_config(RunDir(run_dir).config).data.fold)]
    column = "patient_id" if splits.unit == "patient" else "sample_id"
    return column, {name: {str(g) for g in part[name]} for name in ("train", "val", "test")}


def write_out_of_fold_masks(run_folder: str | Path, data: str | Path, out: str | Path) -> int:
    """Write ``<sample_id>_mask.png`` ({0, 255}, the file's own size) for every test slice of every
    fold of a segmentation run, predicted by the bundle made from the fold's own run (so no
    patient is segmented by a model that saw it), post-processed and thresholded as it ships.

    Returns:
        The number of masks written.
    """
    from PIL import Image

    from braintumor.bundle.create import from_run
    from braintumor.data.loaders import load_dataset
    from braintumor.experiments.shipped import predict_as_shipped

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = load_dataset(data)
    frame = index.frame
    written = 0
    for run_dir in fold_runs(run_folder).values():
        column, parts = fold_parts(run_dir)
        if not frame[column].astype(str).isin(parts["test"]).any():
            continue
        predictions = predict_as_shipped(from_run(run_dir), index, parts["test"], column)
        for result, rows in zip(predictions.results, predictions.rows, strict=True):
            assert result.shape is not None  # a successful analysis knows its input's shape
            for s, r in zip(result.slices, rows, strict=True):
                mask = s.mask if s.mask is not None else np.zeros(result.shape[1:3], np.uint8)
                Image.fromarray((mask * 255).astype(np.uint8)).save(
                    out / f"{frame.at[r, 'sample_id']}_mask.png"
                )
                written += 1
    if written == 0:
        raise DataError(
            run_folder, f"its test patients are not in {data}; masks_from must be a run on this dataset"
        )
    return written
