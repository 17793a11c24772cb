"""Small real-format uploads built in memory (PNG, JPEG, TIFF, NIfTI, DICOM) and crafted bombs."""

from __future__ import annotations

import gzip
import io
import struct
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


def dicom(pixels: np.ndarray, spacing: tuple[float, float] = (0.5, 0.6)) -> bytes:
    """A minimal valid single-frame MR DICOM file (uint16 MONOCHROME2)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("upload.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
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
