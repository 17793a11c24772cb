"""Analysis inputs: expand files and folders, decode each into a :class:`Scan`, sanity-check it.

An input is one 2D image (png/jpg/tif/figshare ``.mat``/single DICOM file) or one volume (a NIfTI
file, the DICOM files of one series, or a patient folder of numbered slices). A folder contributes
every supported file in it (recursively; hidden files, other suffixes, ``*_mask.*`` ground-truth
masks, as in the LGG and phantom layouts, and the files of earlier analyses (see
:mod:`~braintumor.inference.out_folder`) are skipped) with DICOM files grouped per series: a folder
holding several series gives one input per series, each with a note naming the folder and the
series count (``InputItem.note``, carried into ``Scan.notes`` and the result's ``notes``). A folder
whose images are the numbered slices of one patient, ``<prefix>_1`` to ``<prefix>_N`` with one
prefix and suffix and no gap (the LGG layout ``TCGA_CS_4941_19990117/TCGA_CS_4941_19990117_7.tif``),
is one volume in slice-number order, normalised and post-processed as one patient, as in training
(``slices_as_volumes=False`` keeps them separate images). Each input gets an output-file stem: its file
name, made safe (:func:`~braintumor.io_utils.safe_stem`) and unique in the batch.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.data.readers import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, MAT_SUFFIX, read_image
from braintumor.data.volumes import NIFTI_SUFFIXES, Stack, is_dicom, is_nifti, read_dicom, read_nifti
from braintumor.data.volumes import series_uid as _series_uid
from braintumor.errors import DataError
from braintumor.inference.out_folder import output_filter
from braintumor.io_utils import safe_stem, unique_name

DEFAULT_MAX_SLICES = 2048
FOLDER_SUFFIXES = (*IMAGE_SUFFIXES, MAT_SUFFIX, *NIFTI_SUFFIXES)


@dataclass(frozen=True)
class InputItem:
    """One analysis input before decoding: a file, or the files of one DICOM series; ``name`` is
    the stem of its output files (empty: derived from the file name when read); ``note`` says how
    it was found when that is worth knowing (one of several DICOM series in a folder)."""

    source: str
    files: tuple[Path, ...]
    dicom: bool = False
    name: str = ""
    slice_series: bool = False
    note: str = ""


@dataclass
class Inputs:
    """The inputs of a batch, and the earlier analysis outputs skipped in its folders."""

    items: list[InputItem]
    skipped: list[Path] = field(default_factory=list)


@dataclass
class Scan:
    """One decoded input.

    Attributes:
        source: the path (or ``<array>``) as given.
        name: stem used for output files.
        kind: ``image`` (one slice) or ``volume``.
        slices: N×H×W or N×H×W×C array, file dtype.
        spacing: (row, col) mm per pixel, when known; ``slice_spacing`` mm between slices.
        nifti: (affine, header, shape) of NIfTI input, to write the mask volume back.
        dicom: DICOM input's slice headers (pydicom datasets without pixel data) in slice order,
            for a DICOM SEG that refers to them.
        affine: 4×4 RAS affine of voxel (column, row, slice) from DICOM headers, when they give it
            (:func:`~braintumor.data.volumes.dicom_affine`).
        notes: how the input was found, when worth knowing (see :class:`InputItem`); the result's
            ``notes`` start with them.
    """

    source: str
    name: str
    kind: str
    slices: np.ndarray
    spacing: tuple[float, float] | None = None
    slice_spacing: float | None = None
    nifti: tuple[np.ndarray, Any, tuple[int, ...]] | None = None
    dicom: list[Any] | None = field(default=None, repr=False)
    affine: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        """Native channel count (1 for grayscale)."""
        return 1 if self.slices.ndim == 3 else int(self.slices.shape[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.slices.shape[1]), int(self.slices.shape[2])


def stem(path: Path) -> str:
    """File name without its suffix (both of ``.nii.gz``)."""
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem


def expand_inputs(paths: list[str | Path], slices_as_volumes: bool = True) -> list[InputItem]:
    """Files stay as given (errors surface when read); folders expand to their supported files."""
    return collect_inputs(paths, slices_as_volumes).items


def collect_inputs(paths: list[str | Path], slices_as_volumes: bool = True) -> Inputs:
    """:func:`expand_inputs`, with unique output stems and the skipped files of earlier analyses;
    ``slices_as_volumes`` makes each folder of one patient's numbered slices one volume."""
    items: list[InputItem] = []
    skipped: list[Path] = []
    is_output = output_filter()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _folder_items(path, is_output, skipped)
            items.extend(slice_volumes(found) if slices_as_volumes else found)
        else:
            items.append(InputItem(str(path), (path,), path.is_file() and is_dicom(path)))
    taken: set[str] = set()
    named = [replace(i, name=unique_name(safe_stem(_raw_name(i)), taken, fold_case=True)) for i in items]
    return Inputs(named, skipped)


def _folder_items(folder: Path, is_output: Callable[[Path], bool], skipped: list[Path]) -> list[InputItem]:
    """A folder's supported files (DICOM grouped per series); earlier outputs go to ``skipped``."""
    items: list[InputItem] = []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    series: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    found = False
    for file in files:
        dicom = is_dicom(file)
        if not (dicom or _supported(file)):
            continue
        if is_output(file):
            skipped.append(file)
            continue
        if dicom:
            series[(file.parent, _series_uid(file) or file.name)].append(file)
        else:
            items.append(InputItem(str(file), (file,)))
        found = True
    per_folder = Counter(parent for parent, _ in series)
    seen: Counter[Path] = Counter()
    for (parent, uid), group in series.items():
        seen[parent] += 1
        note = _series_note(parent, uid, len(group), seen[parent], per_folder[parent])
        items.append(InputItem(str(parent if len(series) == 1 else group[0]), tuple(group), True, note=note))
    if not found:
        items.append(InputItem(str(folder), ()))
    return items


def _series_note(folder: Path, uid: str, files: int, number: int, count: int) -> str:
    """Empty for the only series of a folder, else which of the folder's ``count`` series this is."""
    if count < 2:
        return ""
    return (
        f"{folder}: holds {count} DICOM series (grouped by SeriesInstanceUID); this input is series "
        f"{number} of {count} ({uid}, {files} file{'s' if files > 1 else ''}), analysed on its own"
    )


_NUMBERED = re.compile(r"^(?P<prefix>.+)_(?P<number>[1-9][0-9]*)$")
_SLICE_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s not in (MAT_SUFFIX, *NIFTI_SUFFIXES))


def slice_series_number(file: Path) -> tuple[str, int] | None:
    """(prefix, slice number) of a ``<prefix>_<N>.<image suffix>`` file (N without leading zeros)."""
    if not file.name.lower().endswith(_SLICE_SUFFIXES):
        return None
    match = _NUMBERED.match(stem(file))
    return (match["prefix"], int(match["number"])) if match else None


def slice_volumes(items: list[InputItem]) -> list[InputItem]:
    """Merge the single-image items of each folder that holds exactly one patient's numbered slices
    (one prefix, one suffix, numbers 1..N with no gap, N >= 2) into one volume item."""
    by_folder: dict[Path, list[int]] = defaultdict(list)
    for k, item in enumerate(items):
        if not item.dicom and len(item.files) == 1:
            by_folder[item.files[0].parent].append(k)
    merged: dict[int, InputItem] = {}
    dropped: set[int] = set()
    for folder, members in by_folder.items():
        files = [items[k].files[0] for k in members]
        numbered = [slice_series_number(f) for f in files]
        if len(files) < 2 or any(n is None for n in numbered):
            continue
        prefixes = {n[0] for n in numbered if n is not None}
        suffixes = {f.suffix.lower() for f in files}
        numbers = sorted(n[1] for n in numbered if n is not None)
        if len(prefixes) != 1 or len(suffixes) != 1 or numbers != list(range(1, len(files) + 1)):
            continue
        ordered = tuple(sorted(files, key=lambda f: slice_series_number(f) or ("", 0)))
        merged[members[0]] = InputItem(str(folder), ordered, slice_series=True)
        dropped.update(members[1:])
    return [merged.get(k, item) for k, item in enumerate(items) if k not in dropped]


def _supported(file: Path) -> bool:
    """A non-DICOM file a folder contributes: a supported suffix, not a ``*_mask.*`` mask."""
    return file.name.lower().endswith(FOLDER_SUFFIXES) and not stem(file).endswith("_mask")


def _raw_name(item: InputItem) -> str:
    """The file stem; for a slice series its folder; for a DICOM series its folder (plus the first
    file when the folder holds several series); a folder's own name when it holds nothing."""
    if not item.files:
        return Path(item.source).name
    first = item.files[0]
    if item.slice_series:
        return first.parent.name
    if not (item.dicom and len(item.files) > 1):
        return stem(first)
    if Path(item.source) != first.parent:
        return f"{first.parent.name}_{stem(first)}"
    return first.parent.name


def read_scan(
    item: InputItem,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_slices: int = DEFAULT_MAX_SLICES,
    max_voxels: int | None = None,
) -> Scan:
    """Decode an input into a :class:`Scan` and sanity-check it (see :func:`check_scan`);
    ``max_voxels`` also bounds a NIfTI volume's total size, read from its header.

    Raises:
        DataError: missing, unsupported, truncated, oversized or unusable input.
    """
    if not item.files:
        raise DataError(
            item.source, f"folder holds no supported images ({', '.join(FOLDER_SUFFIXES)}, DICOM)"
        )
    first = item.files[0]
    if not first.exists():
        raise DataError(first, "file not found")
    if item.dicom:
        stack = read_dicom(list(item.files), max_pixels, max_slices)
    elif item.slice_series:
        stack = _read_slice_series(item, max_pixels, max_slices)
    elif is_nifti(first):
        stack = read_nifti(first, max_pixels, max_slices, max_voxels)
    else:
        stack = Stack(read_image(first, max_pixels)[None])
    name = item.name or safe_stem(_raw_name(item))
    volume = (item.dicom and len(item.files) > 1) or stack.nifti is not None or item.slice_series
    kind = "volume" if volume else "image"
    scan = Scan(item.source, name, kind, stack.slices, stack.spacing, stack.slice_spacing, stack.nifti,
                dicom=stack.dicom, affine=stack.affine, notes=[item.note] if item.note else [])  # fmt: skip
    check_scan(scan)
    return scan


def _read_slice_series(item: InputItem, max_pixels: int, max_slices: int) -> Stack:
    """The numbered slices of one patient folder stacked in slice order (one size and channel count)."""
    if len(item.files) > max_slices:
        raise DataError(item.source, f"holds {len(item.files)} slices; the limit is {max_slices}")
    slices = [read_image(f, max_pixels) for f in item.files]
    first = slices[0]
    for file, s in zip(item.files, slices, strict=True):
        if s.shape != first.shape:
            raise DataError(
                file,
                f"slice of shape {s.shape} in a volume of {item.files[0].name}'s shape {first.shape}; "
                "the numbered slices of a patient folder must share one size "
                "(analyse them as separate images with --slices-as-images)",
            )
    return Stack(np.stack(slices))


def scan_from_array(
    array: np.ndarray, spacing: tuple[float, float] | None = None, name: str = "array"
) -> Scan:
    """Wrap an in-memory H×W or H×W×C slice (C in 1, 3) as a :class:`Scan`.

    Raises:
        DataError: not a 2D slice (volumes go through files: NIfTI or DICOM), or unusable values.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise DataError(
            "<array>",
            f"array shape {a.shape} is not a 2D slice (H×W or H×W×3); analyse volumes from NIfTI/DICOM files",
        )
    scan = Scan("<array>", name, "image", a[None], spacing)
    check_scan(scan)
    return scan


def check_scan(scan: Scan) -> None:
    """Refuse non-numeric, NaN/inf and blank (constant) inputs with a message naming the input.

    A volume may hold blank slices (they are skipped), but not only blank ones.
    """
    s = scan.slices
    if s.size == 0:
        raise DataError(scan.source, "image has no pixels")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_):
        raise DataError(scan.source, f"pixel type {s.dtype} is not numeric")
    if np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.complexfloating):
        bad = int(np.count_nonzero(~np.isfinite(s)))
        if bad:
            raise DataError(
                scan.source, f"{bad} pixels are NaN or infinite; replace them (e.g. with 0) before analysis"
            )
    lo, hi = s.min(), s.max()
    if lo == hi:
        what = "image" if scan.kind == "image" else "every slice of the volume"
        raise DataError(scan.source, f"{what} is blank (all pixels equal {lo}); nothing to analyse")


def blank_slices(scan: Scan) -> np.ndarray:
    """N bool: slices whose pixels are all equal (skipped by the analysis)."""
    flat = scan.slices.reshape(len(scan.slices), -1)
    return np.asarray(flat.min(axis=1) == flat.max(axis=1))
