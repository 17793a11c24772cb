"""Every input format through the analyzer: PNG, JPEG, TIFF, figshare .mat, NIfTI, DICOM file/series."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from inference_helpers import AFFINE, Trained, phantom_array, write_dicom, write_mat, write_nifti, write_tiff
from PIL import Image

from braintumor.bundle.load import BundleModel
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.prepare import normalised
from braintumor.inference.sources import expand_inputs, read_scan

SERIES = "1.2.826.0.1.3680043.8.498.7"


def _volume(trained: Trained, n: int = 4) -> np.ndarray:
    """X×Y×Z uint16 stack of phantom slices with a blank last slice."""
    slices = [phantom_array(trained, k).astype(np.uint16) * 4 for k in range(n - 1)]
    return np.stack([*slices, np.zeros_like(slices[0])], axis=2)


def test_2d_formats(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    image = phantom_array(trained)
    png, jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.fromarray(image).save(png)
    Image.fromarray(np.stack([image] * 3, axis=2)).save(jpg, quality=95)  # RGB file of a gray image
    tif = write_tiff(tmp_path / "c.tif", image.astype(np.uint16) * 100)
    mat = write_mat(tmp_path / "d.mat", image.astype(np.int16) * 5)
    results = analyzer.analyze_files([png, jpg, tif, mat], tmp_path / "out")
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    assert all(r.kind == "image" and r.shape[:3] == (1, 32, 32) and r.area_mm2 is None for r in results)
    png_r = results[0]
    assert Image.open(png_r.outputs["mask"]).size == (32, 32)
    assert Image.open(png_r.outputs["overlay"]).size[0] >= 256  # upscaled so the label is legible
    saved = json.loads(Path(png_r.outputs["json"]).read_text())
    assert saved["input"] == str(png) and saved["class"] == png_r.label
    table = pd.read_csv(tmp_path / "out" / "analysis.csv")
    assert list(table["input"]) == [str(p) for p in (png, jpg, tif, mat)] and table["ok"].all()


def test_array_matches_file(trained: Trained, analyzer: Analyzer) -> None:
    path = trained.images(1)[0]
    from_file, from_array = analyzer.analyze(path), analyzer.analyze(np.asarray(Image.open(path)))
    assert from_array.ok and from_array.input == "<array>"
    assert from_array.area_px == from_file.area_px and from_array.label == from_file.label
    assert from_array.probabilities == pytest.approx(from_file.probabilities, abs=1e-6)


def test_nifti_volume(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "brain.nii.gz", _volume(trained))
    result = analyzer.analyze_files([path], tmp_path / "out")[0]
    assert result.ok, result.error
    assert result.kind == "volume" and len(result.slices) == 4 and result.name == "brain"
    assert result.slices[3].skipped == "blank slice" and not result.slices[3].tumour
    assert result.spacing_mm == pytest.approx((0.9, 0.8, 3.0))  # rows: y (anterior-posterior)
    for s in result.slices:
        assert s.area_mm2 == pytest.approx(s.area_px * 0.8 * 0.9)
    if result.tumour:
        assert result.volume_mm3 == pytest.approx(sum(s.area_mm2 or 0 for s in result.slices) * 3.0)
        assert result.label in result.probabilities and result.majority_label is not None
    mask = nib.load(result.outputs["mask_nifti"])
    assert mask.shape == (32, 32, 4) and np.allclose(mask.affine, AFFINE)
    data = np.asarray(mask.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
    assert [int(data[..., k].sum()) for k in range(4)] == [s.area_px for s in result.slices]


def test_nifti_is_read_in_the_dicom_view_whatever_its_voxel_order(tmp_path: Path) -> None:
    # view: 3 axial slices (inferior -> superior) of 4 rows (anterior -> posterior) x 5 columns
    # (patient's right -> left), as an axial DICOM series shows them
    view = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    ras = np.ascontiguousarray(view[:, ::-1, ::-1].transpose(2, 1, 0))  # x -> right, y -> anterior
    stored = {
        "ras": (ras, np.diag([0.8, 0.9, 3.0, 1.0])),
        "lps": (np.ascontiguousarray(view.transpose(2, 1, 0)), np.diag([-0.8, -0.9, 3.0, 1.0])),
        # sagittal acquisition: voxel axes (S, A, R), stored slice by slice along R
        "sagittal": (
            np.ascontiguousarray(ras.transpose(2, 1, 0)),
            np.array([[0, 0, 0.8, 0], [0, 0.9, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1.0]]),
        ),
    }
    for name, (volume, affine) in stored.items():
        scan = read_scan(expand_inputs([write_nifti(tmp_path / f"{name}.nii", volume, affine)])[0])
        assert np.array_equal(scan.slices, view), name
        assert scan.spacing == pytest.approx((0.9, 0.8)) and scan.slice_spacing == pytest.approx(3.0), name


def test_nifti_with_singleton_fourth_axis(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "v.nii", _volume(trained, 3)[..., None])
    result = analyzer.analyze(path)
    assert result.ok and len(result.slices) == 3


def test_nifti_voxel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    from braintumor.errors import DataError
    from braintumor.inference.sources import InputItem

    path = write_nifti(tmp_path / "v.nii", np.arange(256, dtype=np.int16).reshape(8, 8, 4))
    item = InputItem(str(path), (path,))
    assert read_scan(item, max_voxels=256).slices.shape == (4, 8, 8)
    with pytest.raises(DataError, match=r"exceeds the limits .*255 voxels"):
        read_scan(item, max_voxels=255)


def test_percentile_volume_uses_the_whole_volume(trained: Trained, bundle_model: BundleModel) -> None:
    from braintumor.data.preprocess import normalize_images
    from braintumor.inference.sources import Scan

    vol = np.moveaxis(_volume(trained, 3), 2, 0).astype(np.float32)
    vol[1] *= 3  # a brighter slice shifts the volume's percentiles
    scan = Scan("v", "v", "volume", vol)
    expected = normalize_images([s[None] for s in vol], "percentile-volume", (10.0, 99.0))
    assert np.allclose(normalised(scan, bundle_model), np.stack(expected))
    single = Scan("s", "s", "image", vol[1:2])
    per_image = normalize_images([vol[1][None]], "percentile-image", (10.0, 99.0))[0]
    assert np.allclose(normalised(single, bundle_model)[0], per_image)


@pytest.fixture
def bundle_model(trained: Trained) -> BundleModel:
    from torch import nn

    from braintumor.config import ModelConfig, Preprocessing
    from braintumor.models.card import ModelCard

    prep = Preprocessing(32, 0, "percentile-volume", (10.0, 99.0))
    return BundleModel("seg", ModelCard("segment", ModelConfig(), 1, prep), nn.Identity(), "test")


def test_dicom_series_sorted_by_position(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    images = [phantom_array(trained, k).astype(np.uint16) * 10 for k in range(3)]
    for k, name in zip((2, 0, 1), ("a.dcm", "b.dcm", "c"), strict=True):  # names disagree with order
        write_dicom(folder / name, images[k], instance=k + 1, z=-10.0 + 4.0 * k, series=SERIES)
    (folder / "notes.txt").write_text("ignored")
    items = expand_inputs([folder])
    assert len(items) == 1 and items[0].dicom and len(items[0].files) == 3
    scan = read_scan(items[0])
    assert scan.kind == "volume" and scan.spacing == (0.5, 0.6) and scan.slice_spacing == pytest.approx(4.0)
    for k in range(3):
        assert np.array_equal(scan.slices[k], images[k])
    result = analyzer.analyze_files([folder], tmp_path / "out")[0]
    assert result.ok and result.kind == "volume" and len(result.slices) == 3
    assert all(s.area_mm2 == pytest.approx(s.area_px * 0.3) for s in result.slices)


def test_dicom_series_without_positions_sorted_by_instance(trained: Trained, tmp_path: Path) -> None:
    images = [phantom_array(trained, k).astype(np.uint16) * 10 for k in range(3)]
    for k, name in zip((1, 2, 0), ("x1", "x2", "x3"), strict=True):
        write_dicom(tmp_path / f"{name}.dcm", images[k], instance=k + 1, z=0.0, series=SERIES, position=False)
    scan = read_scan(expand_inputs([tmp_path])[0])
    assert all(np.array_equal(scan.slices[k], images[k]) for k in range(3))
    assert scan.slice_spacing == 3.0  # SliceThickness when positions are unknown


def test_single_dicom_file(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "one.dcm", phantom_array(trained) * 10, 1, 0.0, SERIES)
    result = analyzer.analyze(path)
    assert result.ok and result.kind == "image" and result.spacing_mm == (0.5, 0.6)
    assert result.area_mm2 == pytest.approx(result.area_px * 0.3)


def test_folder_mixes_inputs_in_order(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for k, p in enumerate(trained.images(3)):
        Image.open(p).save(folder / f"{k}.png")
    write_nifti(folder / "v.nii.gz", _volume(trained, 3))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "0_mask.png")  # ground truth: skipped
    results = analyzer.analyze_files([folder])  # batch_size 4: batches span inputs
    assert [Path(r.input).name for r in results] == ["0.png", "1.png", "2.png", "v.nii.gz"]
    assert [r.kind for r in results] == ["image"] * 3 + ["volume"]
    alone = analyzer.analyze(folder / "1.png")
    assert results[1].probabilities == pytest.approx(alone.probabilities, abs=1e-5)


def test_duplicate_names_get_unique_outputs(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    paths = []
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        paths.append(tmp_path / sub / "slice.png")
        Image.open(trained.images(1)[0]).save(paths[-1])
    a, b = analyzer.analyze_files(paths, tmp_path / "out")
    assert a.outputs["json"] != b.outputs["json"] and Path(b.outputs["json"]).name == "slice_2.json"


def test_dicom_monochrome1_inverts_every_slice_alike(trained: Trained, tmp_path: Path) -> None:
    import pydicom

    images = [phantom_array(trained, k).astype(np.uint16) * (k + 5) for k in range(3)]  # other maxima
    for k in range(3):
        path = write_dicom(tmp_path / f"m{k}.dcm", images[k], instance=k + 1, z=4.0 * k, series=SERIES)
        ds = pydicom.dcmread(path)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(path)
    scan = read_scan(expand_inputs([tmp_path])[0])
    assert len({int(s.max()) for s in images}) == 3
    for k in range(3):  # mirrored within the 16-bit stored range, not about each slice's own maximum
        assert np.array_equal(scan.slices[k], 65535 - images[k].astype(np.int64))


def _patient_folder(trained: Trained, folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name, path in zip(names, trained.images(len(names)), strict=True):
        Image.open(path).save(folder / name)
    return folder


def test_patient_folder_of_numbered_slices_is_one_volume(
    trained: Trained, analyzer: Analyzer, tmp_path: Path
) -> None:
    names = [f"TCGA_CS_1_{k}.png" for k in (1, 2, 10, 3, 4, 5, 6, 7, 8, 9)]  # slice-number order, not text
    folder = _patient_folder(trained, tmp_path / "TCGA_CS_1", names)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "TCGA_CS_1_1_mask.png")  # truth: skipped
    (item,) = expand_inputs([folder])
    assert item.slice_series and [f.name for f in item.files] == [f"TCGA_CS_1_{k}.png" for k in range(1, 11)]
    scan = read_scan(item)
    assert scan.kind == "volume" and scan.slices.shape == (10, 32, 32) and scan.name == "TCGA_CS_1"
    result = analyzer.analyze_files([folder], tmp_path / "out")[0]
    assert result.ok and result.kind == "volume" and len(result.slices) == 10
    mask = nib.load(result.outputs["mask_nifti"])  # column × row × slice, read back in the same view
    from braintumor.data.volumes import nifti_to_view

    view = nifti_to_view(np.asarray(mask.dataobj), mask.affine)
    assert [int(v.sum()) for v in view] == [s.area_px for s in result.slices]
    separate = expand_inputs([folder], slices_as_volumes=False)
    assert len(separate) == 10 and not any(i.slice_series for i in separate)


@pytest.mark.parametrize(
    "names",
    [
        ["Te-gl_0010.jpg", "Te-gl_0011.jpg"],  # Kaggle: zero-padded numbers are file ids, not slices
        ["P_1.png", "P_2.png", "P_4.png"],  # a gap
        ["P_1.png", "Q_2.png"],  # two prefixes (several patients in one folder)
        ["P_1.png", "P_2.jpg"],  # two formats
        ["P_1.png"],  # one slice
    ],
)
def test_other_folders_stay_separate_images(trained: Trained, tmp_path: Path, names: list[str]) -> None:
    folder = _patient_folder(trained, tmp_path / "f", names)
    items = expand_inputs([folder])
    assert len(items) == len(names) and not any(i.slice_series for i in items)


def test_patient_folder_slices_of_different_sizes_are_refused(trained: Trained, tmp_path: Path) -> None:
    from braintumor.errors import DataError

    folder = _patient_folder(trained, tmp_path / "P", ["P_1.png", "P_2.png"])
    Image.open(folder / "P_2.png").resize((40, 40)).save(folder / "P_2.png")
    (item,) = expand_inputs([folder])
    with pytest.raises(DataError, match=r"P_2\.png.*--slices-as-images"):
        read_scan(item)


def test_dicom_files_named_by_uid_are_found_in_a_folder(trained: Trained, tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    for k in range(3):  # scanners name files by UID: the "suffix" is the UID's last number
        write_dicom(
            folder / f"1.2.840.113619.2.55.3.{k + 120}", phantom_array(trained) * 10, k + 1, k * 3.0, SERIES
        )
    (folder / "notes.126").write_text("not a DICOM file")
    items = expand_inputs([folder])
    assert len(items) == 1 and items[0].dicom and len(items[0].files) == 3
    assert read_scan(items[0]).kind == "volume"
