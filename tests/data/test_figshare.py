"""figshare loaders: original .mat (v7.3 written with h5py, v5 with scipy) and the PNG conversion."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from braintumor.data.figshare import load_figshare_mat, read_mat
from braintumor.data.loaders import detect_format, load_dataset
from braintumor.errors import DataError


def write_v73(path: Path, label: int, pid: str, image: np.ndarray, mask: np.ndarray) -> None:
    """Write a file in the original layout: MATLAB stores column-major, so h5py sees transposes."""
    with h5py.File(path, "w") as f:
        cj = f.create_group("cjdata")
        cj["label"] = np.array([[float(label)]])
        cj["PID"] = np.array([[ord(c)] for c in pid], dtype=np.uint16)
        cj["image"] = image.T.astype(np.int16)
        cj["tumorMask"] = mask.T.astype(np.uint8)
        cj["tumorBorder"] = np.array([[1.0, 2.0, 3.0, 4.0]])


def make_case(seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 1200, (size, size + 8)).astype(np.int16)  # non-square catches transposes
    mask = np.zeros(image.shape, np.uint8)
    mask[5:12, 3:20] = 1
    return image, mask


def test_v73_round_trip_untransposes(tmp_path: Path) -> None:
    image, mask = make_case(0)
    write_v73(tmp_path / "1.mat", 2, "MR024780G", image, mask)
    rec = read_mat(tmp_path / "1.mat")
    assert rec.label == 2 and rec.pid == "MR024780G"
    assert np.array_equal(rec.image, image) and np.array_equal(rec.mask, mask)


def test_v5_file(tmp_path: Path) -> None:
    image, mask = make_case(1)
    cj = {
        "label": 3.0,
        "PID": "100360",
        "image": image,
        "tumorMask": mask,
        "tumorBorder": np.ones(4),
    }
    scipy.io.savemat(tmp_path / "7.mat", {"cjdata": cj})
    rec = read_mat(tmp_path / "7.mat")
    assert (rec.label, rec.pid) == (3, "100360")
    assert np.array_equal(rec.image, image) and np.array_equal(rec.mask, mask)


def test_mat_folder_with_cvind(tmp_path: Path) -> None:
    for i, (label, pid) in enumerate([(1, "a"), (2, "a"), (3, "b")], start=1):
        write_v73(tmp_path / f"{i}.mat", label, pid, *make_case(i))
    with h5py.File(tmp_path / "cvind.mat", "w") as f:
        f["cvind"] = np.array([[1, 1, 2]], dtype=np.float64)
    assert detect_format(tmp_path) == "figshare-mat"
    index = load_figshare_mat(tmp_path)
    assert list(index.frame["label"]) == ["meningioma", "glioma", "pituitary"]
    assert list(index.frame["patient_id"]) == ["a", "a", "b"]
    assert index.extra["official_folds"] == {"1": 1, "2": 1, "3": 2}


def test_bad_mat_files(tmp_path: Path) -> None:
    (tmp_path / "1.mat").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(DataError, match=r"1\.mat: not a readable MATLAB file"):
        read_mat(tmp_path / "1.mat")
    with h5py.File(tmp_path / "2.mat", "w") as f:
        f.create_group("cjdata")["label"] = np.array([[1.0]])
    with pytest.raises(DataError, match=r"2\.mat: cjdata lacks field"):
        read_mat(tmp_path / "2.mat")
    image, mask = make_case(2)
    write_v73(tmp_path / "3.mat", 9, "x", image, mask)
    with pytest.raises(DataError, match=r"3\.mat: cjdata.label=9"):
        read_mat(tmp_path / "3.mat")


@pytest.mark.realdata
def test_png_sample_labels_patients_folds(shared_data: Path) -> None:
    index = load_dataset(shared_data / "figshare")
    assert index.datasets == ["figshare"]
    assert len(index) == 2545 and len(index.patients) == 196  # the README's counts (37 patients kept aside)
    assert index.class_counts() == {"meningioma": 586, "glioma": 1180, "pituitary": 779}
    selected = {r["figshare_index"]: r for r in _tsv(shared_data / "figshare" / "SELECTED.tsv")}
    for row in index:
        ref = selected[row.sample_id]
        assert (row.label, row.patient_id) == (ref["label_name"], ref["pid"])
        assert index.extra["official_folds"][row.sample_id] == int(ref["fold"])
        assert row.mask.endswith(f"{row.sample_id}_mask.png")


def _tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def test_png_conversion_refuses_images_without_a_patient_or_a_fold(shared_data: Path, tmp_path: Path) -> None:
    import shutil

    from braintumor.data.figshare import load_figshare_png

    source, folder = shared_data / "figshare", tmp_path / "figshare"
    (folder / "images").mkdir(parents=True)
    for name in ("tumor_metadata.csv", "figshare_pid.csv", "figshare_cvind_fold.csv"):
        shutil.copy(source / name, folder / name)
    stems = sorted(p.stem for p in (source / "images").glob("*.png"))[:2]
    for stem in stems:
        shutil.copy(source / "images" / f"{stem}.png", folder / "images")
    assert len(load_figshare_png(folder)) == 2

    def without(name: str, stem: str, keep_id: bool = False) -> None:
        lines = (source / name).read_text().splitlines()
        edited = [(f"{stem}," if keep_id else None) if line.split(",")[0] == stem else line for line in lines]
        (folder / name).write_text("\n".join(line for line in edited if line is not None) + "\n")

    without("figshare_pid.csv", stems[0])  # one image's patient unknown
    expected = rf"figshare_pid\.csv: no patient id for 1 of 2 images \(e\.g\. {stems[0]}\)"
    with pytest.raises(DataError, match=expected):
        load_figshare_png(folder)
    shutil.copy(source / "figshare_pid.csv", folder / "figshare_pid.csv")
    without("figshare_cvind_fold.csv", stems[0], keep_id=True)  # an empty fold cell
    with pytest.raises(DataError, match="fold is not a whole number for 1 row"):
        load_figshare_png(folder)
