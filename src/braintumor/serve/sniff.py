"""Decide an upload's format from its first bytes (never from its name).

Accepted: PNG, JPEG, TIFF (classic and BigTIFF), NIfTI-1/2 single files (``n+1``/``n+2``),
also gzip-compressed, DICOM Part 10 files (``DICM`` at byte 128), and zip archives of such files
(the DICOM files of one or several series, numbered slices; see :mod:`~braintumor.serve.archive`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from braintumor.serve.errors import ApiError

ACCEPTED = (
    "PNG, JPEG, TIFF, NIfTI (.nii, .nii.gz), DICOM (Part 10, 'DICM' at byte 128) "
    "or a .zip of DICOM series or image slices"
)
_NIFTI_HEAD = 544  # enough for the NIfTI-1 magic (344) and the NIfTI-2 one (4)


@dataclass(frozen=True)
class UploadFormat:
    """``name`` (png, jpeg, tiff, nifti, dicom, zip), the file suffix the readers expect, and
    whether the bytes are gzip-compressed (NIfTI only)."""

    name: str
    suffix: str
    gzip: bool = False


def _nifti_magic(head: bytes) -> str | None:
    """``n+1``/``n+2`` for single-file NIfTI, ``pair`` for a .hdr/.img header, else None."""
    if head[344:348] == b"n+1\x00" or head[4:8] == b"n+2\x00":
        return "single"
    if head[344:348] == b"ni1\x00" or head[4:8] == b"ni2\x00":
        return "pair"
    return None


def _gunzip_head(data: bytes, size: int = _NIFTI_HEAD) -> bytes:
    """At most ``size`` decompressed bytes from the start of a gzip stream (b'' if broken)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:65536], size)
    except zlib.error:
        return b""


def _nifti(head: bytes, gz: bool) -> UploadFormat | None:
    kind = _nifti_magic(head)
    if kind == "pair":
        raise ApiError(
            415,
            "this is the header of a NIfTI .hdr/.img pair; upload a single-file NIfTI (.nii or .nii.gz)",
        )
    if kind == "single":
        return UploadFormat("nifti", ".nii.gz" if gz else ".nii", gz)
    return None


def sniff(data: bytes) -> UploadFormat:
    """The format of ``data``.

    Raises:
        ApiError: 415 for anything else (the message lists the accepted formats).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return UploadFormat("png", ".png")
    if data.startswith(b"\xff\xd8\xff"):
        return UploadFormat("jpeg", ".jpg")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return UploadFormat("tiff", ".tif")
    if len(data) >= 132 and data[128:132] == b"DICM":
        return UploadFormat("dicom", ".dcm")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a local file header; an empty archive
        return UploadFormat("zip", ".zip")
    found = _nifti(data[:_NIFTI_HEAD], gz=False)
    if found:
        return found
    if data.startswith(b"\x1f\x8b"):
        found = _nifti(_gunzip_head(data), gz=True)
        if found:
            return found
        raise ApiError(415, f"gzip data that is not a NIfTI volume; expected {ACCEPTED}")
    shown = data[:8].hex(" ") if data else "nothing"
    raise ApiError(415, f"unrecognised file content (first bytes: {shown}); expected {ACCEPTED}")
