"""DICOM in and out: series geometry and headers, a folder of several series, the mask NIfTI in the
series' own geometry, and the DICOM SEG (``analyze_files(..., dicom_seg=True)``)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from inference_helpers import (
    FRAME_OF_REFERENCE,
    Trained,
    phantom_array,
    tumour_images,
    write_dicom,
    write_nifti,
)
from PIL import Image

from braintumor import __version__
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.dicom_seg import NEEDS_DICOM, seg_refusal
from braintumor.inference.results import AnalysisResult
from braintumor.inference.sources import collect_inputs, read_scan

hd = pytest.importorskip("highdicom")

SERIES = "1.2.826.0.1.3680043.8.498.21"
OTHER_SERIES = "1.2.826.0.1.3680043.8.498.22"
ORIGIN = (12.0, -7.5)
SPACING = (0.5, 0.6)  # PixelSpacing: between rows, between columns
Z = (-10.0, -6.0, -2.0, 2.0)  # slice k at z = Z[k]: 4 mm apart
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def _expected_affine() -> np.ndarray:
    """By hand, for an axial series (rows along +x, columns along +y in LPS): voxel (i, j, k) ->
    LPS (x0 + 0.6 i, y0 + 0.5 j, z0 + 4 k) -> RAS (-x, -y, z)."""
    return np.array(
        [[-0.6, 0.0, 0.0, -ORIGIN[0]], [0.0, -0.5, 0.0, -ORIGIN[1]], [0.0, 0.0, 4.0, Z[0]], [0, 0, 0, 1]]
    )


def _series(
    folder: Path,
    images: list[np.ndarray],
    series: str = SERIES,
    position: bool = True,
    frame: str | None = FRAME_OF_REFERENCE,
) -> list[Path]:
    """One file per slice, named against the slice order (slice k at z = Z[k])."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["d.dcm", "b.dcm", "a.dcm", "c.dcm"]
    return [
        write_dicom(folder / names[k], image, instance=k + 1, z=Z[k], series=series, spacing=SPACING,
                    position=position, origin=ORIGIN, frame=frame)
        for k, image in enumerate(images)
    ]  # fmt: skip


def _masks(result: AnalysisResult) -> np.ndarray:
    return np.stack([s.mask if s.mask is not None else np.zeros((32, 32), np.uint8) for s in result.slices])


def test_series_headers_and_affine_in_slice_order(tmp_path: Path) -> None:
    images = [np.full((32, 32), k + 1, np.uint16) for k in range(3)]
    files = _series(tmp_path / "s", images)
    scan = read_scan(collect_inputs([tmp_path / "s"]).items[0])
    assert [int(s[0, 0]) for s in scan.slices] == [1, 2, 3]  # sorted along the normal, not by name
    assert scan.dicom is not None and len(scan.dicom) == 3
    uids = [str(pydicom.dcmread(f).SOPInstanceUID) for f in files]
    assert [str(ds.SOPInstanceUID) for ds in scan.dicom] == uids
    assert all("PixelData" not in ds for ds in scan.dicom)
    assert scan.spacing == SPACING and scan.slice_spacing == pytest.approx(4.0)
    assert scan.affine is not None and np.allclose(scan.affine, _expected_affine())


def test_series_without_positions_keeps_the_view_affine(tmp_path: Path) -> None:
    _series(tmp_path / "s", [np.full((8, 8), k + 1, np.uint16) for k in range(2)], position=False)
    scan = read_scan(collect_inputs([tmp_path / "s"]).items[0])
    assert scan.affine is None and scan.dicom is not None  # sorted by InstanceNumber, geometry unknown


def test_folder_of_two_series_gives_two_inputs_with_a_note(
    trained: Trained, analyzer: Analyzer, tmp_path: Path
) -> None:
    images = [phantom_array(trained, k).astype(np.uint16) * 10 for k in range(4)]
    folder = tmp_path / "patient"
    _series(folder, images[:2])
    for k in range(2):
        write_dicom(folder / f"t2_{k}.dcm", images[2 + k], k + 1, Z[k], OTHER_SERIES)
    items = collect_inputs([folder]).items
    assert len(items) == 2 and all(item.dicom and len(item.files) == 2 for item in items)
    for item in items:
        assert f"{folder}: holds 2 DICOM series" in item.note and "of 2" in item.note
    results = analyzer.analyze_files([folder], tmp_path / "out")
    assert [r.ok for r in results] == [True, True] and [r.kind for r in results] == ["volume"] * 2
    assert all(len(r.notes) == 1 and f"{folder}: holds 2 DICOM series" in r.notes[0] for r in results)
    table = pd.read_csv(tmp_path / "out" / "analysis.csv")
    assert table["notes"].str.contains("holds 2 DICOM series").all()


def test_series_mask_nifti_and_seg(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    images = [*tumour_images(trained, analyzer, 2), np.zeros((32, 32), np.uint16)]  # a blank slice
    files = _series(tmp_path / "series", images)
    result = analyzer.analyze_files([tmp_path / "series"], tmp_path / "out", dicom_seg=True)[0]
    assert result.ok and result.kind == "volume" and result.tumour, result.error
    masks = _masks(result)
    tumour = [s.index for s in result.slices if s.tumour]
    assert tumour and 2 not in tumour and not result.notes

    mask = nib.load(result.outputs["mask_nifti"])  # voxel [i, j, k] = slice k's mask at row j, column i
    assert mask.shape == (32, 32, 3) and np.allclose(mask.affine, _expected_affine())
    assert int(mask.header["sform_code"]) == 1 and int(mask.header["qform_code"]) == 1
    assert np.array_equal(np.asarray(mask.dataobj), masks.transpose(2, 1, 0))

    sources = [pydicom.dcmread(f) for f in files]  # slice k is files[k]
    seg = hd.seg.segread(result.outputs["dicom_seg"])
    assert Path(result.outputs["dicom_seg"]).name == "series_seg.dcm"
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.Manufacturer == "braintumor"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID and seg.SeriesInstanceUID != SERIES
    assert int(seg.NumberOfFrames) == len(tumour)
    frames = np.asarray(seg.pixel_array).reshape(len(tumour), 32, 32)
    uids = [str(s.SOPInstanceUID) for s in sources]
    referenced = []  # highdicom orders the frames its own way; each must match its source slice
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        k = uids.index(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        assert np.array_equal(frame, masks[k])
        assert [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient] == [*ORIGIN, Z[k]]
        referenced.append(k)
    assert sorted(referenced) == tumour  # one frame per tumour slice, none for the others
    shared = seg.SharedFunctionalGroupsSequence[0]
    assert [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient] == [
        1,
        0,
        0,
        0,
        1,
        0,
    ]
    assert [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing] == list(SPACING)
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "tumour" and segment.SegmentDescription == f"tumour ({result.label})"
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "braintumor" and algorithm.AlgorithmVersion == __version__
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    saved = json.loads(Path(result.outputs["json"]).read_text())
    assert saved["outputs"]["dicom_seg"] == result.outputs["dicom_seg"]
    marker = json.loads((tmp_path / "out" / ".braintumor-analysis.json").read_text())
    assert "series_seg.dcm" in marker["files"]
    assert tmp_path / "out" / "series_seg.dcm" in collect_inputs([tmp_path / "out"]).skipped  # not an input


def test_seg_is_refused_for_other_inputs_and_the_rest_succeeds(
    trained: Trained, analyzer: Analyzer, tmp_path: Path
) -> None:
    image = tumour_images(trained, analyzer, 1)[0]
    png = tmp_path / "slice.png"
    Image.fromarray((image // 10).astype(np.uint8)).save(png)
    nii = write_nifti(tmp_path / "vol.nii.gz", np.stack([image, image], axis=2))
    dcm = write_dicom(tmp_path / "one.dcm", image, 1, 0.0, SERIES)
    no_frame = _series(tmp_path / "noframe", [image, image], series=OTHER_SERIES, frame=None)
    results = analyzer.analyze_files([png, nii, dcm, no_frame[0].parent], tmp_path / "out", dicom_seg=True)
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    by_name = {r.name: r for r in results}
    for name, source in (("slice", png), ("vol", nii)):
        r = by_name[name]
        assert "dicom_seg" not in r.outputs and "json" in r.outputs
        assert len(r.notes) == 1 and r.notes[0].startswith(f"{source}: no DICOM SEG written: {NEEDS_DICOM}")
    one = by_name["one"]
    assert one.kind == "image" and one.tumour and not one.notes
    seg = hd.seg.segread(one.outputs["dicom_seg"])
    assert int(seg.NumberOfFrames) == 1
    assert np.array_equal(np.asarray(seg.pixel_array).reshape(32, 32), _masks(one)[0])
    missing = by_name["noframe"]
    assert "dicom_seg" not in missing.outputs and "mask_nifti" in missing.outputs
    assert len(missing.notes) == 1 and "Frame Of Reference UID" in missing.notes[0]
    table = pd.read_csv(tmp_path / "out" / "analysis.csv").fillna("")
    assert NEEDS_DICOM in table.loc[0, "notes"] and table.loc[2, "notes"] == ""


def test_seg_refusals_name_the_input_and_the_reason(tmp_path: Path) -> None:
    _series(tmp_path / "s", [np.full((8, 8), k + 1, np.uint16) for k in range(2)])
    scan = read_scan(collect_inputs([tmp_path / "s"]).items[0])
    tumour = np.zeros((2, 8, 8), np.uint8)
    tumour[1, 2:4, 2:4] = 1
    assert seg_refusal(scan, tumour) is None
    empty = seg_refusal(scan, np.zeros_like(tumour))
    reason = "no tumour found (a SEG holds only frames with tumour)"
    assert empty == f"{tmp_path / 's'}: no DICOM SEG written: {reason}"
    volume = np.arange(128, dtype=np.int16).reshape(8, 8, 2)
    nifti = read_scan(collect_inputs([write_nifti(tmp_path / "v.nii.gz", volume)]).items[0])
    refusal = seg_refusal(nifti, tumour) or ""
    assert refusal.startswith(f"{tmp_path / 'v.nii.gz'}: no DICOM SEG written: {NEEDS_DICOM}")
    assert "NIfTI volume" in refusal
