"""LGG and class-folder loaders on the real samples and on broken copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from braintumor.data.inspect import inspect_dataset
from braintumor.data.lgg import load_lgg, patient_id
from braintumor.data.loaders import detect_format, load_dataset
from braintumor.errors import DataError


def test_patient_id_drops_date() -> None:
    assert patient_id("TCGA_CS_4942_19970222") == "TCGA_CS_4942"


@pytest.mark.realdata
def test_lgg_original_counts(shared_data: Path) -> None:
    report = inspect_dataset(shared_data / "lgg" / "kaggle_3m")
    assert report.format == "lgg"
    assert (report.n_patients, report.n_samples, report.n_with_tumour) == (8, 191, 73)
    assert report.image_sizes == {"256x256x3": 191}
    assert report.problems == []


@pytest.mark.realdata
def test_lgg128_counts(shared_data: Path) -> None:
    report = inspect_dataset(shared_data / "lgg128")
    assert (report.n_patients, report.n_samples, report.n_with_tumour) == (89, 3177, 1066)


@pytest.mark.realdata
def test_lgg_clinical_join_and_order(shared_data: Path) -> None:
    index = load_lgg(shared_data / "lgg")
    clinical = index.extra["clinical"]
    assert len(clinical) == 110
    assert set(index.patients) <= set(clinical["Patient"])
    first = index.frame[index.frame["patient_id"] == "TCGA_CS_4942"]
    assert list(first["slice"]) == sorted(first["slice"]) and first["slice"].iloc[0] == 1


@pytest.mark.realdata
def test_lgg_broken_copy_lists_every_problem(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "lgg" / "kaggle_3m" / "TCGA_CS_4942_19970222"
    dst = tmp_path / "kaggle_3m" / src.name
    shutil.copytree(src, dst)
    (dst / f"{src.name}_1_mask.tif").unlink()  # image without its mask
    (dst / f"{src.name}_2.tif").write_bytes(b"II*\x00garbage")  # corrupt tif
    tifffile.imwrite(dst / f"{src.name}_3_mask.tif", np.zeros((128, 128), np.uint8))  # wrong shape
    tifffile.imwrite(dst / f"{src.name}_4_mask.tif", np.full((256, 256), 7, np.uint8))  # not binary
    (tmp_path / "kaggle_3m" / "data.csv").write_text("Patient,RNASeqCluster\nTCGA_CS_4942,1\n")
    report = inspect_dataset(tmp_path)
    text = "\n".join(f"{p['file']}: {p['problem']}" for p in report.problems)
    assert "_1.tif: image has no mask file" in text
    assert "_2.tif: cannot decode TIFF" in text
    assert "_3_mask.tif: mask shape 128x128 differs from its image 256x256" in text
    assert "_4_mask.tif: mask values {7} are not binary" in text
    assert "data.csv: data.csv lacks column(s)" in text
    assert report.n_samples == 20


def test_empty_and_unknown_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folder is empty"):
        detect_format(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no known dataset layout"):
        load_dataset(tmp_path)
    report = inspect_dataset(tmp_path)
    assert report.n_samples == 0 and "no known dataset layout" in report.problems[0]["problem"]


@pytest.mark.realdata
def test_kaggle4_folders(shared_data: Path) -> None:
    index = load_dataset(shared_data / "kaggle4")
    assert index.datasets == ["kaggle4"]
    assert index.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    train = index.frame[index.frame["split"] == "train"]["label"].value_counts().to_dict()
    test = index.frame[index.frame["split"] == "test"]["label"].value_counts().to_dict()
    assert train == {"glioma": 1110, "meningioma": 1131, "notumor": 1595, "pituitary": 1248}  # data README
    assert test == {"glioma": 36, "meningioma": 38, "notumor": 40, "pituitary": 33}
    assert not index.patient_ids_known
    row = index.frame.iloc[0]
    assert row["label"] in row["image"] and row["mask"] == ""


def test_user_class_folder_without_splits(tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("yes", "no"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((16, 16), i * 40, np.uint8)).save(tmp_path / cls / f"{i}.jpg")
    index = load_dataset(tmp_path)
    assert index.classes == ["no", "yes"] and len(index) == 6
    assert set(index.frame["split"]) == {""}


@pytest.mark.realdata
def test_lgg128_leave_one_institution_out(shared_data: Path) -> None:
    from braintumor.data.lgg import load_lgg
    from braintumor.data.splits import make_splits

    splits = make_splits(load_lgg(shared_data / "lgg128"), method="site")
    sites = [sorted({p.split("_")[1] for p in fold["test"]}) for fold in splits.folds]
    assert sites == [["CS"], ["DU"], ["FG"], ["HT"]]  # the shared sample has no EZ patient
    assert [len(f["test"]) for f in splits.folds] == [13, 37, 11, 28]
