"""Header-only size checks before anything is decoded (decompression and pixel bombs -> 413).

The readers check the size of one slice too; these checks add what a server needs on top: the
whole volume of a NIfTI, every page of a TIFF, every frame of a DICOM. A header that cannot be
parsed is left to the reader, whose message says what is wrong (422).
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from collections.abc import Callable

from braintumor.extras import require
from braintumor.serve.errors import ApiError
from braintumor.serve.sniff import UploadFormat

_Size = tuple[int, ...] | None
_MAX_TIFF_PAGES = 4096


def _bomb(label: str, what: str, count: int, limit: int, unit: str) -> ApiError:
    return ApiError(
        413, f"{label}: {what} has {count:,} {unit}, more than the limit of {limit:,}; "
        "refused before decoding (a decompression bomb, or a scan far larger than an MRI slice)",
    )  # fmt: skip


def _image_size(data: bytes, label: str) -> _Size:
    """(height, width) from a PNG's IHDR or a JPEG's header (PIL, lazily: no pixel is decoded)."""
    from PIL import Image

    if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as img:
                return img.size[1], img.size[0]
        except Image.DecompressionBombError as exc:  # PIL's own limit (~179 Mpx), far above ours
            raise ApiError(413, f"{label}: refused before decoding ({exc})") from None
        except Exception:  # unreadable header: the reader reports it
            return None


def _tiff_size(data: bytes, label: str) -> _Size:
    """(values over all pages,) of a TIFF; a 413 for more than :data:`_MAX_TIFF_PAGES` pages."""
    import tifffile

    from braintumor.data.readers import tiff_log_captured

    try:
        with tiff_log_captured(), tifffile.TiffFile(io.BytesIO(data)) as tif:
            pages = len(tif.pages)
            total = (
                0 if pages > _MAX_TIFF_PAGES else sum(math.prod(getattr(p, "shape", ())) for p in tif.pages)
            )
    except Exception:
        return None
    if pages > _MAX_TIFF_PAGES:
        raise _bomb(label, "the TIFF", pages, _MAX_TIFF_PAGES, "pages")
    return (int(total),)


def _dicom_size(data: bytes) -> _Size:
    pydicom = require("pydicom", "dicom", "reading DICOM uploads")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:
        return None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return frames, int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)


def _nifti_size(data: bytes, gz: bool) -> _Size:
    import nibabel as nib

    head = data[:1024]
    if gz:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:65536], 1024)
        except zlib.error:
            return None
    # the header size (348: NIfTI-1, 540: NIfTI-2, either byte order) picks the class; parsing
    # only the fixed header skips extensions, which may run past the bytes read here
    sizes = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
    header_class = nib.Nifti2Header if 540 in sizes else nib.Nifti1Header if 348 in sizes else None
    if header_class is None:
        return None  # not a NIfTI header: the reader refuses it with its own message
    try:
        header = header_class.from_fileobj(io.BytesIO(head[: header_class.sizeof_hdr]), check=False)
        return tuple(int(s) for s in header.get_data_shape())
    except Exception:
        return None


def check_size(fmt: UploadFormat, data: bytes, label: str, max_pixels: int, max_voxels: int) -> int | None:
    """Refuse uploads whose headers announce more pixels than the limits allow.

    Returns:
        The pixels (voxels; values of a TIFF) the header announces; None when it cannot be read
        (the reader reports that) or the format has no such header (a zip).

    Raises:
        ApiError: 413 naming the size found and the limit.
    """
    readers: dict[str, Callable[[bytes], _Size]] = {
        "png": lambda d: _image_size(d, label), "jpeg": lambda d: _image_size(d, label),
        "tiff": lambda d: _tiff_size(d, label), "dicom": _dicom_size,
        "nifti": lambda d: _nifti_size(d, fmt.gzip),
    }  # fmt: skip
    if fmt.name not in readers:
        return None
    size = readers[fmt.name](data)
    if size is None:
        return None
    if fmt.name in ("png", "jpeg") and math.prod(size) > max_pixels:
        raise _bomb(label, f"the {size[1]}x{size[0]} image", math.prod(size), max_pixels, "pixels")
    if fmt.name == "tiff" and size[0] > max_pixels * 4:
        raise _bomb(label, "the TIFF", size[0], max_pixels * 4, "values over all its pages")
    if fmt.name == "dicom" and math.prod(size[1:]) > max_pixels:
        raise _bomb(label, f"the {size[2]}x{size[1]} DICOM image", math.prod(size[1:]), max_pixels, "pixels")
    if fmt.name == "dicom" and math.prod(size) > max_voxels:
        raise _bomb(label, f"the {size[0]}-frame DICOM", math.prod(size), max_voxels, "pixels")
    if fmt.name == "nifti" and math.prod(size) > max_voxels:
        shape = "×".join(map(str, size))
        raise _bomb(label, f"the {shape} NIfTI volume", math.prod(size), max_voxels, "voxels")
    return math.prod(size)
