"""Safe extraction of a zip upload: the DICOM files of one or several series, or image slices.

Every member is checked from the zip's central directory before anything is written:

- at most ``ZipLimits.members`` files (and four times that many entries of any kind), 413;
- the sum of the members' declared sizes at most ``ZipLimits.total_bytes``, 413;
- no member over 1 MiB that declares more than :data:`MAX_RATIO` times its compressed size (a
  zip bomb; smaller members are bounded by the total, and a blank DICOM slice compresses ~1000×), 413;
- names: no absolute path, drive letter, ``..`` component, NUL byte or more than
  :data:`MAX_DEPTH` folders; no symbolic link or other special file; no encrypted member; no
  zip inside (by name, and by content while extracting), 422. Folders, hidden files and folders
  (``.name``), ``__MACOSX/`` and ``DICOMDIR``/``Thumbs.db``/``desktop.ini`` are skipped.

Then members are extracted one by one into a private folder, each name made safe
(:func:`~braintumor.io_utils.safe_stem`), counting the bytes actually decompressed: a member that
yields more than its header declared, or a running total past the limit, stops the extraction
(413). A member whose content is DICOM (``DICM`` at byte 128) but whose name lacks ``.dcm`` (files
named by UID, ``1.2.840...``) gets ``.dcm`` appended, so that the folder reader groups it in its series.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from braintumor.inference.analyzer import Cancelled, stop_if
from braintumor.io_utils import safe_stem
from braintumor.serve.errors import ApiError
from braintumor.serve.preflight import check_size
from braintumor.serve.sniff import sniff

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # members up to 1 MiB are not ratio-checked (blank DICOM slices compress ~1000×)
MAX_DEPTH = 16
SKIPPED_NAMES = frozenset({"__macosx", "dicomdir", "thumbs.db", "desktop.ini"})
DICOM_SUFFIXES = (".dcm", ".dicom")
CHUNK = 1 << 16
_DRIVE = re.compile(r"^[A-Za-z]:")
_EXTRACT_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


@dataclass(frozen=True)
class ZipLimits:
    """``members``: files extracted at most; ``total_bytes``: their uncompressed bytes at most."""

    members: int
    total_bytes: int
    ratio: float = MAX_RATIO


def _shown(name: str) -> str:
    """A member name for a message: control characters replaced, at most 120 characters."""
    clean = "".join(c if c.isprintable() else "?" for c in name)
    return repr(clean if len(clean) <= 120 else clean[:117] + "...")


def _refuse(status: int, label: str, name: str, problem: str) -> ApiError:
    return ApiError(status, f"{label}: member {_shown(name)} {problem}")


def _parts(info: zipfile.ZipInfo, label: str) -> list[str]:
    """The member's path components after the name checks (see the module doc)."""
    name = info.filename
    unsafe = "; zip the files with relative paths inside one folder"
    if "\x00" in name:
        raise _refuse(422, label, name, "has a NUL byte in its name" + unsafe)
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise _refuse(422, label, name, "has an absolute path" + unsafe)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(422, label, name, "has a '..' component, which would leave the folder" + unsafe)
    if len(parts) > MAX_DEPTH:
        raise _refuse(422, label, name, f"is nested deeper than {MAX_DEPTH} folders" + unsafe)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(422, label, name, "is a symbolic link; zip the files themselves (zip without -y)")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse(422, label, name, "is not a regular file (a device, pipe or socket)")
    return parts


def _skipped(info: zipfile.ZipInfo, parts: list[str]) -> bool:
    """Folders, hidden files, macOS resource forks and index files are not analysed."""
    if info.is_dir() or not parts:
        return True
    return any(p.startswith(".") or p.lower() in SKIPPED_NAMES for p in parts)


def _check_member(info: zipfile.ZipInfo, label: str, limits: ZipLimits) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise _refuse(422, label, name, "is encrypted; zip the files without a password")
    if name.lower().endswith(".zip"):
        raise _refuse(422, label, name, "is a zip inside the zip; zip the files themselves, not archives")
    if info.file_size > RATIO_FLOOR and info.file_size > limits.ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise _refuse(
            413, label, name, f"declares {info.file_size:,} bytes from {info.compress_size:,} compressed "
            f"(ratio {ratio:,.0f}, the limit is {limits.ratio:g}); refused as a zip bomb",
        )  # fmt: skip


def plan_zip(
    infos: list[zipfile.ZipInfo], label: str, limits: ZipLimits
) -> list[tuple[zipfile.ZipInfo, Path]]:
    """The members to extract with their safe relative paths, after every header check.

    Raises:
        ApiError: 413 too many members, too many bytes or a bomb's ratio; 422 an unsafe name,
            a link, an encrypted member, a nested zip, or no file to analyse.
    """
    if len(infos) > 4 * limits.members:
        raise ApiError(
            413, f"{label}: the zip has {len(infos):,} entries; the limit is {4 * limits.members:,} "
            "(files, folders and hidden files together)",
        )  # fmt: skip
    planned: list[tuple[zipfile.ZipInfo, Path]] = []
    seen: set[Path] = set()
    total = 0
    for info in infos:
        parts = _parts(info, label)
        if _skipped(info, parts):
            continue
        _check_member(info, label, limits)
        relative = Path(*(safe_stem(p, default="_", max_bytes=200) for p in parts))
        if relative in seen:
            problem = "appears twice (after making names safe); give every file its own name"
            raise _refuse(422, label, info.filename, problem)
        seen.add(relative)
        planned.append((info, relative))
        total += info.file_size
    if len(planned) > limits.members:
        raise ApiError(
            413, f"{label}: the zip holds {len(planned):,} files; the limit is {limits.members:,} "
            "(split the series over several zips, or analyse it with `braintumor analyze`)",
        )  # fmt: skip
    if total > limits.total_bytes:
        raise ApiError(
            413, f"{label}: the zip's files hold {total:,} bytes uncompressed, more than the limit of "
            f"{limits.total_bytes:,} ({limits.total_bytes / 1e6:g} MB); send fewer files, or raise "
            "the server's --max-zip-mb",
        )  # fmt: skip
    if not planned:
        raise ApiError(422, f"{label}: the zip holds no files to analyse (only folders or hidden files)")
    return planned


def _target(dest: Path, relative: Path, head: bytes) -> Path:
    target = dest / relative
    if head[128:132] == b"DICM" and not target.name.lower().endswith(DICOM_SUFFIXES):
        target = target.with_name(f"{target.name}.dcm")
    if not target.resolve().is_relative_to(dest.resolve()):  # cannot happen after _parts; belt and braces
        raise ApiError(422, f"member {relative} would leave the extraction folder")
    return target


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, relative: Path, dest: Path, label: str,
             budget: int) -> tuple[Path, int]:  # fmt: skip
    """Write one member, counting the bytes it really yields; returns its path and size."""
    with zf.open(info) as source:
        head = source.read(CHUNK)
        if head[:4] in ZIP_MAGIC:
            raise _refuse(422, label, info.filename, "is a zip inside the zip; zip the files themselves")
        target = _target(dest, relative, head)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with open(target, "xb") as out:
            chunk = head
            while chunk:
                written += len(chunk)
                if written > info.file_size:
                    problem = f"yields more than the {info.file_size:,} bytes its header declares"
                    raise _refuse(413, label, info.filename, problem + "; refused as a zip bomb")
                if written > budget:
                    raise ApiError(413, f"{label}: the zip's files yield more bytes than their headers "
                                   "declare together; refused as a zip bomb")  # fmt: skip
                out.write(chunk)
                chunk = source.read(CHUNK)
    return target, written


def extract_zip(
    data: bytes, label: str, dest: Path, limits: ZipLimits, cancelled: Cancelled | None = None
) -> list[Path]:
    """Check ``data`` as a zip (:func:`plan_zip`), then extract its members into ``dest`` (new).

    Returns:
        The extracted files, in archive order.

    Raises:
        ApiError: as :func:`plan_zip`; 413 a member yields more bytes than declared; 422 the zip
            or a member is damaged, or uses a compression this server cannot read.
        AnalysisCancelled: ``cancelled`` turned true (checked before each member).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError) as exc:
        problem = f"not a readable zip archive ({exc}); upload the zip as it was made"
        raise ApiError(422, f"{label}: {problem}") from None
    dest.mkdir(parents=True)
    files: list[Path] = []
    with zf:
        budget = limits.total_bytes
        for info, relative in plan_zip(zf.infolist(), label, limits):
            stop_if(cancelled)
            try:
                path, size = _extract(zf, info, relative, dest, label, budget)
            except _EXTRACT_ERRORS as exc:
                problem = str(exc).replace(str(dest), label)
                problem = (
                    f"cannot be extracted ({type(exc).__name__}: {problem}); the zip is damaged (its "
                    "content does not match its header) or uses a compression this server cannot read "
                    "(use deflate)"
                )
                raise _refuse(422, label, info.filename, problem) from None
            budget -= size
            files.append(path)
    return files


def check_sizes(files: list[Path], dest: Path, label: str, max_pixels: int, max_voxels: int) -> None:
    """Header checks of the extracted images (:func:`~braintumor.serve.preflight.check_size`), and
    of their pixels together: at most ``max_voxels``, as one volume upload. Files that are no
    image are left to the folder reader (it skips them, or reports them as failed inputs).

    Raises:
        ApiError: 413 an image, or all of them together, larger than the limits.
    """
    total = 0
    for path in files:
        shown = f"{label}/{path.relative_to(dest).as_posix()}"
        data = path.read_bytes()
        try:
            fmt = sniff(data)
        except ApiError:
            continue
        total += check_size(fmt, data, shown, max_pixels, max_voxels) or 0
        if total > max_voxels:
            raise ApiError(
                413, f"{label}: the zip's images hold more than {max_voxels:,} pixels together (the limit "
                "of one volume); send fewer or smaller images",
            )  # fmt: skip
