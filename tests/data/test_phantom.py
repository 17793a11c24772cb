"""Seeded phantoms: shapes, determinism, class patterns and the written dataset."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from braintumor.data.index import SampleIndex
from braintumor.data.phantom import (
    CLASSES,
    ensure_phantoms,
    generate_phantoms,
    is_phantom_folder,
    load_phantoms,
    make_patient,
    make_phantom,
    sample_anatomy,
)
from braintumor.errors import DataError


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleIndex]:
    out = tmp_path_factory.mktemp("phantoms")
    return out, generate_phantoms(out, n_patients=8, slices_per_patient=4, size=32, seed=3)


@pytest.mark.parametrize(("size", "channels"), [(32, 1), (64, 1), (48, 3)])
@pytest.mark.parametrize("label", CLASSES)
def test_make_phantom_shapes_dtypes_ranges(label: str, size: int, channels: int) -> None:
    image, mask = make_phantom(np.random.default_rng(0), label, size, channels)
    assert image.shape == (channels, size, size) and image.dtype == np.float32
    assert mask.shape == (size, size) and mask.dtype == np.uint8
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.std() > 0.05
    assert set(np.unique(mask)) <= {0, 1}
    assert (mask.sum() == 0) == (label == "notumor")


def test_bad_arguments_are_explained() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown phantom label"):
        make_phantom(rng, "astrocytoma")
    with pytest.raises(ValueError, match="channels"):
        make_phantom(rng, "glioma", channels=2)
    anatomy = sample_anatomy(rng, "glioma", 32)
    with pytest.raises(ValueError, match="anatomy is for"):
        make_phantom(rng, "glioma", 64, anatomy=anatomy)


def test_make_patient_same_seed_same_slices() -> None:
    a = make_patient(np.random.default_rng(5), "glioma", 3, 32, 3)
    b = make_patient(np.random.default_rng(5), "glioma", 3, 32, 3)
    c = make_patient(np.random.default_rng(6), "glioma", 3, 32, 3)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1][0], c[1][0])


@pytest.mark.parametrize("label", ["glioma", "meningioma", "pituitary"])
def test_tumour_patients_grow_and_shrink(label: str) -> None:
    rng = np.random.default_rng(1)
    edge_empty = 0
    for _ in range(15):
        for n in (1, 2, 6):  # every tumour patient shows the tumour somewhere
            areas = [int(m.sum()) for _, m in make_patient(rng, label, n, 32)]
            assert max(areas) > 0
        edge_empty += areas[0] == 0 or areas[-1] == 0
        assert areas[np.argmax(areas)] >= max(areas[0], areas[-1])
    assert edge_empty > 0  # edge slices miss the tumour, as in real volumes


def _centroids(label: str, n: int = 24, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(11)
    out = []
    for _ in range(n):
        mask = make_phantom(rng, label, size)[1]
        rows, cols = np.nonzero(mask)
        out.append((rows.mean(), cols.mean()))
    return np.array(out)


def test_class_locations_differ() -> None:
    mid = 31.5
    pit, gli, men = _centroids("pituitary"), _centroids("glioma"), _centroids("meningioma")
    assert np.abs(pit[:, 1] - mid).mean() < 2.5  # pituitary: midline
    assert pit[:, 0].mean() > 42  # ... in the lower-central region (skull base)
    assert np.abs(gli[:, 1] - mid).mean() > 5  # glioma: inside one hemisphere
    radius = lambda c: np.hypot(c[:, 0] - mid, c[:, 1] - mid).mean()  # noqa: E731
    assert radius(men) > radius(gli)  # meningioma: on the inner skull surface


def test_generate_writes_balanced_binary_dataset(small: tuple[Path, SampleIndex]) -> None:
    _, index = small
    assert len(index) == 32 and index.datasets == ["phantom"] and index.classes == CLASSES
    per_patient = index.frame.groupby("patient_id")["label"].first().value_counts()
    assert per_patient.to_dict() == dict.fromkeys(CLASSES, 2)
    assert index.patients[0] == "PH0000" and index[0].sample_id == "PH0000_1"
    assert sorted(index.frame["slice"].unique()) == [1, 2, 3, 4]
    for row in index:
        image = np.asarray(Image.open(row.image))
        mask = np.asarray(Image.open(row.mask))
        assert image.shape == (32, 32) and image.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        if row.label == "notumor":
            assert not mask.any()
    tumour = index.frame[index.frame["label"] != "notumor"]
    for _pid, rows in tumour.groupby("patient_id"):
        assert any(np.asarray(Image.open(p)).any() for p in rows["mask"])


def test_round_trip_through_index_csv(small: tuple[Path, SampleIndex]) -> None:
    out, index = small
    assert is_phantom_folder(out) and (out / "index.csv").is_file()
    loaded = load_phantoms(out)
    assert loaded.frame.equals(index.frame) and loaded.classes == index.classes
    assert loaded.extra["phantom"]["seed"] == 3


def test_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    assert not is_phantom_folder(tmp_path)
    with pytest.raises(DataError, match=r"index\.csv") as err:
        load_phantoms(tmp_path)
    assert err.value.path == str(tmp_path)


def test_generation_is_deterministic(tmp_path: Path, small: tuple[Path, SampleIndex]) -> None:
    same = generate_phantoms(tmp_path / "a", n_patients=8, slices_per_patient=4, size=32, seed=3)
    other = generate_phantoms(tmp_path / "b", n_patients=8, slices_per_patient=4, size=32, seed=4)
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(small[0])
    assert len(same) == len(other)
    assert _tree_bytes(tmp_path / "b") != _tree_bytes(small[0])


def test_three_channel_tiff(tmp_path: Path) -> None:
    index = generate_phantoms(tmp_path, n_patients=2, slices_per_patient=2, size=32, channels=3)
    assert all(p.endswith(".tif") for p in index.frame["image"])
    array = tifffile.imread(index[0].image)
    assert array.shape == (32, 32, 3) and array.dtype == np.uint8


def test_ensure_phantoms_reuses_matching_folder(tmp_path: Path) -> None:
    first = ensure_phantoms(tmp_path, n_patients=4, slices_per_patient=2, size=32)
    stamp = (tmp_path / "index.csv").stat().st_mtime_ns
    again = ensure_phantoms(tmp_path, n_patients=4, slices_per_patient=2, size=32)
    assert again.frame.equals(first.frame)
    assert (tmp_path / "index.csv").stat().st_mtime_ns == stamp
    bigger = ensure_phantoms(tmp_path, n_patients=8, slices_per_patient=2, size=32)
    assert len(bigger) == 16


def test_default_dataset_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    index = generate_phantoms(tmp_path)  # 40 patients x 6 slices at 64²
    assert len(index) == 240
    assert time.perf_counter() - start < 5.0
