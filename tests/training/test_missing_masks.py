"""A slice whose mask file is missing is unlabelled for segmentation, not tumour-free."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from braintumor.config import DataConfig, TrainConfig
from braintumor.training.data import prepare_fold


@pytest.mark.realdata
def test_segmentation_leaves_out_slices_without_a_mask_file(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "lgg" / "kaggle_3m"
    for folder in sorted(p for p in source.iterdir() if p.is_dir())[:4]:
        shutil.copytree(folder, tmp_path / "kaggle_3m" / folder.name)
    patient = sorted((tmp_path / "kaggle_3m").iterdir())[0]
    lost = [f"{patient.name}_{n}" for n in (10, 11, 12, 13)]  # sample ids = the images' stems
    for stem in lost:
        (patient / f"{stem}_mask.tif").unlink()
    data = DataConfig(path=str(tmp_path), image_size=32, channels=3, folds=2, seed=0)
    with pytest.warns(UserWarning, match=r"4 of \d+ \w+ slices have no mask file .*, \.\.\.\)") as record:
        fold = prepare_fold(data, TrainConfig(task="segment"), tmp_path / "run", tmp_path / "splits.json")
    assert len(record) == 1
    kept = {fold.store.sample_ids[p] for ds in (fold.train, fold.val, fold.test) for p in ds.positions}
    everything = set(fold.store.sample_ids)
    assert set(lost) <= everything and not kept & set(lost)  # in the store, out of every part
    assert len(kept) == len(everything) - len(lost)  # every other slice is still used
    # classification needs no masks: nothing is dropped
    cls = prepare_fold(
        data, TrainConfig(task="classify", loss="ce"), tmp_path / "cls", tmp_path / "splits.json"
    )
    assert sum(len(ds) for ds in (cls.train, cls.val, cls.test)) == len(everything)
    assert not np.asarray(fold.store.meta["has_mask"]).all()
