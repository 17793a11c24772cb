"""NIfTI and DICOM readers producing stacks of 2D slices with their pixel spacing.

NIfTI volumes are reoriented (from their affine, with nibabel) to the view of an axial DICOM
series: axial slices from inferior to superior, rows from anterior to posterior, columns from the
patient's right to left (radiological convention, LPS). The LGG images the FLAIR models learnt from
have that view (anterior at the top, slice numbers from inferior to superior; left-right cannot be
read from the images and is taken to be radiological, as their DICOM source). A volume stored in
another voxel order (RAS, sagittal, ...) used to be sliced along its last axis as stored, rotated
or mirrored against that view. Masks are written back in the file's own voxel order, so a mask
volume of the same shape and affine lines up voxel for voxel. DICOM series are sorted by position
along the slice normal (``ImagePositionPatient`` · normal), else by ``InstanceNumber``; their
slices stay as stored (rows and columns of the files), their headers (without pixel data) are kept
in slice order for derived objects (DICOM SEG), and their geometry is the affine of
:func:`dicom_affine`. Sizes are checked from the headers before any pixel data is decoded (no
decompression bomb).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.errors import DataError
from braintumor.extras import require

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
# suffixes of files that are never DICOM (images, arrays, tables, text, archives, analysis outputs)
OTHER_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".mat", ".npy", ".npz", ".h5", ".hdf5",
    ".csv", ".tsv", ".json", ".txt", ".md", ".html", ".yaml", ".yml", ".xml", ".pdf", ".zip", ".gz",
    ".tar", ".py", ".safetensors", ".onnx",
})  # fmt: skip


@dataclass
class Stack:
    """Decoded slices of one input.

    Attributes:
        slices: N×H×W or N×H×W×C array in the file's dtype (rescaled for DICOM).
        spacing: (row, column) pixel size in mm, when the file records it.
        slice_spacing: distance between slices in mm (volumes), when known.
        nifti: (affine 4×4, header, original shape) for NIfTI input, to write masks back
            (:func:`nifti_to_view` and :func:`view_to_nifti` map between voxel order and view).
        dicom: for DICOM input, the pydicom datasets of the slices without their pixel data, in
            slice order (``dicom[k]`` is the header of ``slices[k]``).
        affine: for DICOM input whose headers give the geometry, the 4×4 RAS affine (float64) of
            voxel (column, row, slice index) (:func:`dicom_affine`).
    """

    slices: np.ndarray
    spacing: tuple[float, float] | None = None
    slice_spacing: float | None = None
    nifti: tuple[np.ndarray, Any, tuple[int, ...]] | None = None
    dicom: list[Any] | None = None
    affine: np.ndarray | None = None


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def is_dicom(path: Path) -> bool:
    """``.dcm``/``.dicom`` suffix, or the ``DICM`` marker at byte 128 of a file whose suffix is not a
    known other format (scanners name files by UID, ``1.2.840.113619.2.55.3.6046.126``, or not at
    all)."""
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    if suffix in OTHER_SUFFIXES or path.name.lower().endswith(NIFTI_SUFFIXES):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


VIEW_AXES = ("L", "P", "S")  # the view's column, row and slice directions (nibabel axis codes)


def _view_transform(affine: np.ndarray) -> np.ndarray:
    """nibabel orientation transform from a volume's voxel axes to (L, P, S)."""
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

    return ornt_transform(io_orientation(affine), axcodes2ornt(VIEW_AXES))


def nifti_to_view(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """X×Y×Z voxels -> N×H×W slices in the DICOM view (see the module doc)."""
    from nibabel.orientations import apply_orientation

    lps = apply_orientation(volume, _view_transform(affine))  # [column (L), row (P), slice (S)]
    return np.ascontiguousarray(np.transpose(lps, (2, 1, 0)))


def view_to_nifti(slices: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The inverse of :func:`nifti_to_view`: N×H×W slices -> the file's X×Y×Z voxel order."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    back = ornt_transform(axcodes2ornt(VIEW_AXES), io_orientation(affine))
    return apply_orientation(np.transpose(slices, (2, 1, 0)), back)


def read_nifti(path: Path, max_pixels: int, max_slices: int, max_voxels: int | None = None) -> Stack:
    """A 3D NIfTI (X×Y×Z, or X×Y×Z×1) -> its axial slices in the DICOM view (see the module doc)
    with the pixel size in mm; the sizes are checked from the header, before any voxel is decoded.

    Raises:
        DataError: unreadable/truncated file, not 3D, too many pixels, slices or voxels.
    """
    import nibabel as nib

    try:
        img: Any = nib.load(path)
        shape = tuple(int(s) for s in img.shape)
    except Exception as exc:
        raise DataError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc}); is it truncated?") from None
    if len(shape) == 4 and shape[3] == 1:
        squeezed = shape[:3]
    elif len(shape) == 3:
        squeezed = shape
    else:
        raise DataError(
            path,
            f"NIfTI shape {shape} is not a 3D volume (X×Y×Z); save 2D slices as PNG/TIFF or add a "
            "third axis of size 1, and split 4D series into 3D volumes",
        )
    source = np.argsort(_view_transform(img.affine)[:, 0])  # view axis k <- voxel axis source[k]
    cols, rows, n_slices = (squeezed[i] for i in source)
    too_many_voxels = max_voxels is not None and cols * rows * n_slices > max_voxels
    if cols * rows > max_pixels or n_slices > max_slices or too_many_voxels:
        raise DataError(
            path,
            f"NIfTI shape {shape} exceeds the limits ({max_pixels} pixels per slice, {max_slices} slices"
            + (f", {max_voxels} voxels)" if max_voxels is not None else ")"),
        )
    try:
        data = np.asarray(img.dataobj).reshape(squeezed)
    except Exception as exc:
        raise DataError(
            path, f"cannot decode NIfTI voxels ({type(exc).__name__}: {exc}); is it truncated?"
        ) from None
    zooms = [float(img.header.get_zooms()[i]) for i in source]  # (column, row, slice) in mm
    spacing = (zooms[1], zooms[0]) if zooms[0] > 0 and zooms[1] > 0 else None
    slice_spacing = zooms[2] if zooms[2] > 0 else None
    return Stack(
        nifti_to_view(data, img.affine), spacing, slice_spacing, (img.affine, img.header.copy(), shape)
    )


def _dcmread(path: Path, header_only: bool = False) -> Any:
    pydicom = require("pydicom", "dicom", f"reading the DICOM file {path}")
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except Exception as exc:
        raise DataError(path, f"cannot read DICOM ({type(exc).__name__}: {exc}); is it truncated?") from None


def series_uid(path: Path) -> str:
    """SeriesInstanceUID of a DICOM file ('' when unreadable or absent).

    Raises:
        MissingExtraError: ``pydicom`` is not installed (``pip install 'braintumor[dicom]'``).
    """
    try:
        return str(getattr(_dcmread(path, header_only=True), "SeriesInstanceUID", ""))
    except DataError:
        return ""


def _position(ds: Any) -> float | None:
    """Position of a slice along its normal (mm), from ImagePositionPatient/ImageOrientationPatient."""
    ipp, iop = getattr(ds, "ImagePositionPatient", None), getattr(ds, "ImageOrientationPatient", None)
    if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
        return None
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    return float(np.dot(normal, np.asarray(ipp, float)))


def _pixels(path: Path, ds: Any, max_pixels: int) -> np.ndarray:
    rows, cols = int(getattr(ds, "Rows", 0)), int(getattr(ds, "Columns", 0))
    if rows * cols == 0:
        raise DataError(path, "DICOM has no Rows/Columns: it holds no image, or is truncated")
    if rows * cols > max_pixels:
        raise DataError(path, f"{cols}x{rows} pixels exceeds the limit of {max_pixels}")
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        raise DataError(path, "multi-frame DICOM is not supported; export single-frame files or NIfTI")
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DataError(
            path, f"cannot decode DICOM pixels ({type(exc).__name__}: {exc}); is it truncated?"
        ) from None
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        array = _invert_monochrome1(array, ds)
    slope, intercept = (
        float(getattr(ds, "RescaleSlope", 1) or 1),
        float(getattr(ds, "RescaleIntercept", 0) or 0),
    )
    if (slope, intercept) != (1.0, 0.0):
        array = array.astype(np.float32) * slope + intercept
    if array.ndim not in (2, 3):
        raise DataError(path, f"DICOM pixel array has shape {array.shape}; expected one 2D slice")
    return array


def _invert_monochrome1(array: np.ndarray, ds: Any) -> np.ndarray:
    """MONOCHROME1 (low values bright) as MONOCHROME2, mirrored within the stored value range
    (``BitsStored``, ``PixelRepresentation``) so that every slice of a series gets the same
    mapping; mirroring about each slice's own maximum shifted slices against each other."""
    bits = int(getattr(ds, "BitsStored", 0) or 0)
    if bits and np.issubdtype(array.dtype, np.integer):
        signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return (low + high) - array.astype(np.int64)
    return -array.astype(np.float32)  # no stored range: any fixed mirror is the same after normalisation


def read_dicom(files: list[Path], max_pixels: int, max_slices: int) -> Stack:
    """One DICOM file (one slice) or the files of one series (a volume), sorted along the normal
    (else by ``InstanceNumber``), with their headers in that order and, when every slice has a
    position, the affine of :func:`dicom_affine`.

    Raises:
        DataError: unreadable file, too many pixels or slices, slices of different sizes.
        MissingExtraError: ``pydicom`` is not installed (``pip install 'braintumor[dicom]'``).
    """
    if len(files) > max_slices:
        raise DataError(files[0].parent, f"series has {len(files)} slices; the limit is {max_slices}")
    datasets = [(_dcmread(f), f) for f in files]
    positions = [_position(ds) for ds, _ in datasets]
    by_position = all(p is not None for p in positions)
    if len(datasets) > 1 and by_position:
        order = np.argsort(np.asarray(positions, float), kind="stable")
    else:
        order = np.argsort([int(getattr(ds, "InstanceNumber", 0) or 0) for ds, _ in datasets], kind="stable")
    datasets = [datasets[i] for i in order]
    arrays = [_pixels(f, ds, max_pixels) for ds, f in datasets]
    headers = [_without_pixels(ds) for ds, _ in datasets]  # the decoded arrays hold the pixels
    if len({a.shape for a in arrays}) > 1:
        raise DataError(files[0].parent, f"series slices differ in size: {sorted({a.shape for a in arrays})}")
    first = headers[0]
    ps = getattr(first, "PixelSpacing", None)
    spacing = (float(ps[0]), float(ps[1])) if ps is not None and len(ps) == 2 else None
    slice_spacing = _slice_spacing([positions[i] for i in order], first)
    affine = dicom_affine(headers, slice_spacing) if by_position else None
    return Stack(np.stack(arrays), spacing, slice_spacing, dicom=headers, affine=affine)


PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _without_pixels(ds: Any) -> Any:
    """``ds`` with its (decoded) pixel data deleted: the header a DICOM SEG refers to."""
    for keyword in PIXEL_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def dicom_affine(headers: list[Any], slice_spacing: float | None = None) -> np.ndarray | None:
    """4×4 RAS affine of a DICOM series sorted along its normal (as NIfTI, and dcm2niix, give it).

    Voxel (i, j, k) = (column, row, slice index) maps to ``ImagePositionPatient`` of the first slice
    + i · column spacing · row direction (``ImageOrientationPatient[:3]``) + j · row spacing ·
    column direction (``[3:]``) + k · slice step, in LPS (DICOM), then to RAS (x and y negated).
    The slice step is (last position - first position) / (N - 1) for N > 1 slices (a tilted gantry
    keeps its shear), else the normal times ``slice_spacing`` (1 mm when unknown).

    Args:
        headers: the slices' datasets in slice order.
        slice_spacing: mm between slices, for a single slice (or slices at one position).

    Returns:
        float64 4×4 affine, or None when a slice lacks ``ImagePositionPatient``,
        ``ImageOrientationPatient`` or ``PixelSpacing`` (the geometry is unknown).
    """
    try:
        ipp = np.asarray([[float(v) for v in ds.ImagePositionPatient] for ds in headers])
        iop = np.asarray([float(v) for v in headers[0].ImageOrientationPatient])
        row_mm, col_mm = (float(v) for v in headers[0].PixelSpacing)
    except (AttributeError, TypeError, ValueError):
        return None
    if ipp.shape != (len(headers), 3) or iop.shape != (6,) or not np.all(np.isfinite(ipp)):
        return None
    along_row, along_column = iop[:3], iop[3:]
    step = (ipp[-1] - ipp[0]) / (len(headers) - 1) if len(headers) > 1 else np.zeros(3)
    if float(np.linalg.norm(step)) < 1e-6:
        step = np.cross(along_row, along_column) * (slice_spacing or 1.0)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = along_row * col_mm, along_column * row_mm, step, ipp[0]
    return LPS_TO_RAS @ lps


def _slice_spacing(positions: list[float | None], first: Any) -> float | None:
    known = [p for p in positions if p is not None]
    if len(known) > 1 and len(known) == len(positions):
        gaps = np.abs(np.diff(known))
        if float(np.median(gaps)) > 0:
            return float(np.median(gaps))
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        value = getattr(first, tag, None)
        if value is not None and float(value) > 0:
            return float(value)
    return None
