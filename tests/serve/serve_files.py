"""Small real-format uploads built in memory (PNG, JPEG, TIFF, NIfTI, DICOM) and crafted bombs."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

import nibabel as nib
import numpy as np
import tifffile
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

AFFINE = np.diag([0.8, 0.9, 3.0, 1.0])


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def nifti(volume: np.ndarray, compress: bool = True) -> bytes:
    """An X×Y×Z volume as .nii.gz (or .nii) bytes; zooms 0.8 × 0.9 × 3 mm."""
    data = nib.Nifti1Image(volume, AFFINE).to_bytes()
    return gzip.compress(data) if compress else data


def nifti_header_bomb(shape: tuple[int, int, int], extension_bytes: int = 0) -> bytes:
    """A gzipped NIfTI whose header announces ``shape`` but holds almost no voxels; with
    ``extension_bytes`` (a multiple of 16) a header extension of that size follows the header."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352 + extension_bytes
    flag, extension = b"\0" * 4, b""
    if extension_bytes:
        flag, extension = b"\1\0\0\0", struct.pack("<ii", extension_bytes, 0) + b"x" * (extension_bytes - 8)
    return gzip.compress(header.binaryblock + flag + extension + b"\0" * 1024)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid-looking PNG that declares ``width`` × ``height`` 8-bit gray pixels (a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.2"
STUDY = "1.2.826.0.1.3680043.8.498.1"


def dicom(
    pixels: np.ndarray,
    spacing: tuple[float, float] = (0.5, 0.6),
    series: str | None = None,
    z: float | None = None,
    instance: int = 1,
) -> bytes:
    """A minimal valid single-frame MR DICOM file (uint16 MONOCHROME2); with ``z`` an axial slice
    of a series at ``ImagePositionPatient`` (0, 0, z) with a study and frame of reference (what a
    DICOM SEG needs)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("upload.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series or generate_uid()
    ds.Modality = "MR"
    ds.InstanceNumber = instance
    if z is not None:
        ds.StudyInstanceUID = STUDY
        ds.FrameOfReferenceUID = FRAME_OF_REFERENCE
        ds.SliceThickness = 3.0
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = list(spacing)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_series(slices: list[np.ndarray], series: str | None = None) -> list[bytes]:
    """The DICOM files of one axial series, 3 mm apart, in slice order."""
    uid = series or generate_uid()
    return [dicom(s, series=uid, z=3.0 * k, instance=k + 1) for k, s in enumerate(slices)]


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``members`` (name -> bytes), in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()
