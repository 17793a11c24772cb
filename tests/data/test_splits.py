"""Patient-level splits: no leakage, stratification, official folds, persistence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from braintumor.data.index import Sample, SampleIndex
from braintumor.data.splits import (
    SplitLeakageError,
    Splits,
    check_no_leakage,
    load_or_make_splits,
    make_splits,
    official_kfold,
    patient_kfold,
    predefined_split,
    train_val_split,
)
from braintumor.errors import ConfigError, DataError

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def make_index(
    per_class: int = 5,
    classes: Sequence[str] = CLASSES,
    known: bool = True,
    slices: int = 3,
    split: str = "",
) -> SampleIndex:
    """A file-less index: ``per_class`` patients per class, 1..``slices`` slices each."""
    samples = []
    for ci, label in enumerate(classes):
        for p in range(per_class):
            pid = f"{label[:3]}{p:02d}"
            for s in range(1 + (p % slices)):
                sid = f"{pid}_{s}"
                samples.append(
                    Sample("t", sid, pid if known else sid, label, ci, f"{sid}.png", slice=s, split=split)
                )
    return SampleIndex.from_samples(samples, classes, patient_ids_known=known)


def test_patient_kfold_never_leaks_across_seeds() -> None:
    index = make_index(per_class=6)
    everyone = set(index.patients)
    for seed in range(25):
        folds = patient_kfold(index, k=5, seed=seed)
        assert len(folds) == 5
        tests = [set(test) for _, test in folds]
        assert set().union(*tests) == everyone and sum(map(len, tests)) == len(everyone)
        for train, test in folds:
            assert not set(train) & set(test) and set(train) | set(test) == everyone


def test_every_class_in_every_test_fold() -> None:
    index = make_index(per_class=5)
    labels = dict(zip(index.frame["patient_id"], index.frame["label"], strict=True))
    for seed in (0, 1, 42):
        for _, test in patient_kfold(index, k=5, seed=seed):
            assert {labels[p] for p in test} == set(CLASSES)


def test_kfold_is_seeded() -> None:
    index = make_index(per_class=6)
    assert patient_kfold(index, 5, 7) == patient_kfold(index, 5, 7)
    assert patient_kfold(index, 5, 7) != patient_kfold(index, 5, 8)


def test_single_label_data_still_group_kfold() -> None:
    index = make_index(per_class=7, classes=["lgg"])
    folds = patient_kfold(index, k=3, seed=0)
    assert all(not set(a) & set(b) for a, b in folds) and len(folds) == 3


def test_k_larger_than_patients_is_explained() -> None:
    with pytest.raises(ValueError, match="the index has 4"):
        patient_kfold(make_index(per_class=1), k=5)


def test_image_level_warning() -> None:
    index = make_index(per_class=3, known=False)
    with pytest.warns(UserWarning, match="no patient ids"):
        splits = make_splits(index, k=3, seed=0)
    assert splits.method == "image-kfold" and splits.unit == "image"
    assert set(splits.groups()) == set(index.frame["sample_id"])


def test_official_folds_used_and_checked() -> None:
    index = make_index(per_class=5)
    fold_of = {p: i % 5 + 1 for i, p in enumerate(index.patients)}
    index.extra["official_folds"] = {s.sample_id: fold_of[s.patient_id] for s in index}
    splits = make_splits(index, k=3, seed=0)  # auto -> official, k from the table
    assert splits.method == "official" and splits.k == 5
    for f, fold in enumerate(splits.folds, start=1):
        assert fold["test"] == sorted(p for p in index.patients if fold_of[p] == f)
    # a patient whose slices span two folds: warned, then kept on one side only
    sid = index.frame[index.frame["patient_id"] == "gli02"]["sample_id"].iloc[0]
    index.extra["official_folds"][sid] = 1
    with pytest.warns(UserWarning, match="span several official folds"):
        folds = official_kfold(index)
    assert sum("gli02" in test for _, test in folds) == 1
    images = make_index(per_class=5, known=False)  # official folds without patient ids
    images.extra["official_folds"] = {s.sample_id: i % 5 + 1 for i, s in enumerate(images)}
    with pytest.warns(UserWarning, match="no patient ids"):
        assert make_splits(images, seed=0).method == "official"


def test_train_val_split_stratified() -> None:
    index = make_index(per_class=5)
    train, val = train_val_split(index.patients, index, 0.2, seed=0)
    labels = dict(zip(index.frame["patient_id"], index.frame["label"], strict=True))
    assert len(val) == 4 and {labels[p] for p in val} == set(CLASSES)
    assert not set(train) & set(val) and set(train) | set(val) == set(index.patients)
    assert len(train_val_split(index.patients[:3], index, 0.01, 0)[1]) == 1  # at least one
    assert train_val_split(index.patients, index, 0.0, 0)[1] == []


def test_predefined_split() -> None:
    train = make_index(per_class=2, known=False, split="train")
    test = make_index(per_class=1, known=False, split="test")
    frame = pd.concat([train.frame, test.frame.assign(sample_id=test.frame["sample_id"] + "t")])
    index = SampleIndex(frame, CLASSES, patient_ids_known=False)
    tr, te = predefined_split(index)
    assert len(tr) == len(train) and len(te) == len(test) and not set(tr) & set(te)
    splits = make_splits(index, method="predefined", val_fraction=0.2)
    assert splits.k == 1 and splits.folds[0]["test"] == te
    with pytest.raises(ValueError, match="'train' or 'test'"):
        predefined_split(make_index())
    assert splits.check_fold(0) == 0
    with pytest.raises(ConfigError, match=r"data.fold=1 does not exist.*Training/Testing split, one fold"):
        splits.subset(index, 1, "test")  # was silently fold 0: a "5-fold CV" of five identical runs


def test_fold_beyond_the_splits_is_an_error_not_the_last_fold() -> None:
    splits = make_splits(make_index(per_class=5), k=3, seed=1)
    assert [splits.check_fold(k) for k in range(3)] == [0, 1, 2]
    for k in (3, -1):
        with pytest.raises(ConfigError, match=r"3 patient-kfold folds \(0..2\)"):
            splits.check_fold(k)


def test_splits_subset_and_leakage_check() -> None:
    index = make_index(per_class=5)
    splits = make_splits(index, k=5, seed=1)
    parts = [splits.subset(index, 0, p) for p in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(index)
    splits.folds[2]["val"].append(splits.folds[2]["test"][0])
    with pytest.raises(SplitLeakageError, match="fold 2"):
        check_no_leakage(splits)


def test_save_load_and_reuse(tmp_path: Path) -> None:
    index = make_index(per_class=5)
    path = tmp_path / "splits.json"
    made = load_or_make_splits(path, index, k=5, seed=3)
    assert Splits.load(path) == made
    stamp = path.stat().st_mtime_ns
    assert load_or_make_splits(path, index, k=5, seed=3) == made
    assert path.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="other data"):
        load_or_make_splits(path, make_index(per_class=6), k=5, seed=3)
    with pytest.raises(DataError, match="k=4"):
        load_or_make_splits(path, index, k=4, seed=3)


def test_broken_splits_file(tmp_path: Path) -> None:
    path = tmp_path / "splits.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a valid splits file"):
        Splits.load(path)


def test_leave_one_site_out(tmp_path: Path) -> None:
    index = make_index(per_class=4, classes=["glioma"], slices=2)
    patients = sorted(set(index.frame["patient_id"]))
    index.extra["sites"] = {p: ("CS", "DU", "EZ")[i % 3] for i, p in enumerate(patients)}
    splits = make_splits(index, k=5, seed=1, val_fraction=0.25, method="site")
    assert splits.method == "site" and splits.k == 3 and len(splits.folds) == 3
    for fold, site in zip(splits.folds, ("CS", "DU", "EZ"), strict=True):
        assert {index.extra["sites"][p] for p in fold["test"]} == {site}
        assert site not in {index.extra["sites"][p] for p in fold["train"] + fold["val"]}
    assert sorted(p for f in splits.folds for p in f["test"]) == patients  # each patient tested once
    index.save(tmp_path / "index.csv")
    assert SampleIndex.load(tmp_path / "index.csv").extra["sites"] == index.extra["sites"]
    with pytest.raises(ValueError, match="needs the patients' sites"):
        make_splits(make_index(), method="site")


def test_one_fold_on_every_patient() -> None:
    index = make_index(per_class=4, classes=["glioma", "meningioma"], slices=2)
    patients = sorted(set(index.frame["patient_id"]))
    splits = make_splits(index, k=5, val_fraction=0.25, method="all")
    assert splits.method == "all" and splits.k == 1 and len(splits.folds) == 1
    fold = splits.folds[0]
    assert fold["test"] == [] and len(fold["val"]) == 2 and sorted(fold["train"] + fold["val"]) == patients
    assert make_splits(index, method="all", val_fraction=0).folds[0]["train"] == patients
    with pytest.raises(ConfigError, match="one fold"):
        splits.check_fold(1)


def test_config_split_methods_are_the_splitters() -> None:
    from braintumor.config import SPLIT_METHODS, DataConfig
    from braintumor.data.splits import METHODS

    assert SPLIT_METHODS == METHODS
    with pytest.raises(ConfigError, match=r"data\.split"):
        DataConfig(split="by-hospital")
