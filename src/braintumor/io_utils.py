"""Atomic file writes (a crash never leaves a half-written result behind) and strict JSON."""

from __future__ import annotations

import json
import math
import os
import tempfile
import unicodedata
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

from braintumor.errors import OutputError


def atomic_write(path: Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(Path(path), write)


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (numpy's too) replaced by None, recursively;
    numpy scalars and arrays become Python numbers and lists, tuples lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "shape"):  # numpy scalar or array, tensor
        return finite(obj.tolist())
    return obj


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259) of ``obj``: non-finite numbers are ``null``, never ``NaN``, which
    strict parsers reject; objects JSON cannot hold (paths, dates) are written as strings."""
    return json.dumps(finite(obj), indent=indent, default=str, allow_nan=False)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (:func:`json_text`) to ``path`` atomically."""
    atomic_write_text(Path(path), json_text(obj, indent=2) + "\n")


def unique_name(name: str, taken: set[str], fold_case: bool = False) -> str:
    """``name``, or ``name_2``, ``name_3``... if already in ``taken``; the result is added to it, so
    outputs of same-named inputs never overwrite each other. With ``fold_case`` names that differ
    only in case count as equal (as on macOS and Windows file systems); ``taken`` then holds
    case-folded names."""

    def key(text: str) -> str:
        return text.casefold() if fold_case else text

    candidate, k = name, 2
    while key(candidate) in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(key(candidate))
    return candidate


RESERVED_CHARS = frozenset('<>:"/\\|?*')
"""Characters no file name may hold on some system (path separators and Windows-reserved ones)."""
_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", *(f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10))]
)


def _safe_char(c: str) -> bool:
    """Printable and allowed in file names everywhere: not reserved, not a control, format
    (e.g. right-to-left override), surrogate or line/paragraph separator character."""
    category = unicodedata.category(c)
    return c not in RESERVED_CHARS and category[0] != "C" and category not in ("Zl", "Zp")


def safe_stem(name: str, default: str = "input", max_bytes: int = 120) -> str:
    """A file-name stem for outputs made from ``name`` (an input's stem).

    Letters and digits of any script, spaces and harmless punctuation stay (``Gehirn_Übersicht``,
    ``脑``); each run of unsafe characters (:data:`RESERVED_CHARS`, control and invisible format
    characters, undecodable bytes) becomes one ``_``; leading and trailing dots and spaces go,
    Windows device names (``CON``, ``NUL``...) get a ``_`` prefix, and the stem is cut to
    ``max_bytes`` UTF-8 bytes. Returns ``default`` when nothing is left. Not unique: pass the
    result through :func:`unique_name`.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join("".join(run) if ok else "_" for ok, run in groupby(text, _safe_char))
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    text = text.strip(" .")
    if text.split(".", 1)[0].upper() in _DEVICE_NAMES:
        text = f"_{text}"
    return text or default


def prepare_out_dir(path: Path, option: str = "--out") -> Path:
    """Create the output folder ``path`` (parents too) and check that files can be written in it.

    Raises:
        OutputError: ``path`` is an existing file, or the folder cannot be created or written
            (no permission, a read-only or virtual filesystem such as /proc).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, f"exists and is not a folder; give {option} a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(path, f"cannot write here ({reason}); give {option} a writable folder") from None
    return path
