"""Test helpers: the trained-runs record and writers of small real-format files (NIfTI with
nibabel, DICOM with pydicom, figshare .mat, TIFF)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import tifffile
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from braintumor.inference.analyzer import Analyzer


@dataclass(frozen=True)
class Trained:
    """Run folders and a verified bundle (with ONNX models) made from them."""

    root: Path
    seg: Path
    cls: Path
    gate: Path
    bundle: Path
    phantoms: Path

    def images(self, n: int = 6) -> list[Path]:
        """The first ``n`` phantom PNGs (32×32 grayscale)."""
        return sorted((self.phantoms / "images").glob("*.png"))[:n]


def phantom_array(trained: Trained, k: int = 0) -> np.ndarray:
    """H×W uint8 phantom slice ``k``."""
    return np.asarray(Image.open(trained.images(k + 1)[k]))


def tumour_images(trained: Trained, analyzer: Analyzer, n: int) -> list[np.ndarray]:
    """``n`` phantom slices (32×32 uint16, ×10) in which ``analyzer`` finds a tumour."""
    results = analyzer.analyze_files(trained.images(16))
    hits = [k for k, r in enumerate(results) if r.tumour]
    assert len(hits) >= n, "the tiny phantom model finds too few tumours"
    return [phantom_array(trained, k).astype(np.uint16) * 10 for k in hits[:n]]


AFFINE = np.diag([0.8, 0.9, 3.0, 1.0])


def write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    """Save an X×Y×Z array; zooms follow the affine's diagonal."""
    nib.save(nib.Nifti1Image(volume, affine), path)
    return path


FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.2"


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    instance: int,
    z: float,
    series: str,
    spacing: tuple[float, float] = (0.5, 0.6),
    position: bool = True,
    origin: tuple[float, float] = (0.0, 0.0),
    frame: str | None = FRAME_OF_REFERENCE,
) -> Path:
    """A minimal valid single-frame axial MR DICOM file (uint16 MONOCHROME2, explicit VR little
    endian) at ``ImagePositionPatient`` (origin[0], origin[1], z); no patient or study attributes
    but the StudyInstanceUID (as an anonymiser may leave it); ``frame=None`` omits the
    FrameOfReferenceUID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = 3.0
    ds.InstanceNumber = instance
    if frame is not None:
        ds.FrameOfReferenceUID = frame
    if position:
        ds.ImagePositionPatient = [origin[0], origin[1], z]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mat(path: Path, image: np.ndarray) -> Path:
    """figshare v7.3 layout (MATLAB column-major: h5py sees transposes)."""
    with h5py.File(path, "w") as f:
        cj = f.create_group("cjdata")
        cj["label"] = np.array([[1.0]])
        cj["PID"] = np.array([[ord(c)] for c in "MR1"], dtype=np.uint16)
        cj["image"] = image.T.astype(np.int16)
        cj["tumorMask"] = np.zeros(image.shape, np.uint8).T
    return path


def write_tiff(path: Path, array: np.ndarray) -> Path:
    tifffile.imwrite(path, array)
    return path
