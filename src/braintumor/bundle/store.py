"""The files of a model bundle, read from a folder or a ``.zip``, checked against ``manifest.json``.

A bundle's ``manifest.json`` maps every other file name to its sha256. Readers only ever return
bytes of files the manifest lists, after checking their hash, so a corrupted, edited or missing
file is an error that names it. The hashes guard against accidents, not an attacker who can also
rewrite the manifest; nothing here unpickles (weights are safetensors, metadata is JSON), so a
hostile bundle can give wrong answers but cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

from braintumor.errors import BrainTumorError
from braintumor.io_utils import atomic_write_json

MANIFEST = "manifest.json"
MAX_MEMBER_BYTES = 2 * 1024**3  # a zip member larger than this is refused (zip-bomb guard)


class BundleError(BrainTumorError):
    """A model bundle is missing, incomplete, tampered with or inconsistent."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> dict[str, str]:
    """Hash every regular file of ``folder`` (except the manifest itself) into ``manifest.json``."""
    files = {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    atomic_write_json(folder / MANIFEST, {"algorithm": "sha256", "files": files})
    return files


def add_to_manifest(folder: Path, names: list[str]) -> dict[str, str]:
    """Add (or re-hash) ``names`` in an existing ``manifest.json``, keeping every other entry."""
    files = dict(BundleReader(folder).files)
    files.update({name: sha256_file(folder / name) for name in names})
    atomic_write_json(folder / MANIFEST, {"algorithm": "sha256", "files": dict(sorted(files.items()))})
    return files


class BundleReader:
    """Verified read access to the files of a bundle folder or ``.zip``.

    Args:
        path: the bundle folder, or a ``.zip`` holding its files (at the root or in one folder).

    Raises:
        BundleError: the path is missing, not a bundle, or its manifest is unreadable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip_names: dict[str, zipfile.ZipInfo] | None = None
        if self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip_names = _zip_members(self.path)
        elif not self.path.is_dir():
            what = "file is not a zip archive" if self.path.is_file() else "not found"
            raise BundleError(f"{self.path}: model bundle {what}; expected a bundle folder or .zip")
        raw = self._raw(MANIFEST)
        try:
            manifest = json.loads(raw)
            files = manifest["files"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BundleError(f"{self.where(MANIFEST)}: not a valid bundle manifest ({exc})") from None
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise BundleError(f"{self.where(MANIFEST)}: 'files' must map file names to sha256 strings")
        self.files: dict[str, str] = files

    @property
    def is_zip(self) -> bool:
        return self._zip_names is not None

    def where(self, name: str) -> str:
        """Display path of a bundle member (``B/x`` or ``B.zip:x``)."""
        return f"{self.path}:{name}" if self.is_zip else str(self.path / name)

    def has(self, name: str) -> bool:
        """Whether the manifest lists ``name``."""
        return name in self.files

    def _raw(self, name: str) -> bytes:
        if self._zip_names is not None:
            info = self._zip_names.get(name)
            if info is None:
                raise BundleError(f"{self.where(name)}: file missing from the bundle archive")
            try:
                with zipfile.ZipFile(self.path) as archive:
                    return archive.read(info)
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
                raise BundleError(
                    f"{self.where(name)}: cannot extract ({type(exc).__name__}: {exc}); the archive is "
                    "damaged or uses an unsupported compression or encryption: re-copy or recreate it"
                ) from None
        file = self.path / name
        if not file.is_file():
            raise BundleError(f"{file}: file missing from the bundle; recreate or re-copy the bundle")
        return file.read_bytes()

    def read(self, name: str) -> bytes:
        """Bytes of a manifest-listed file whose sha256 matches.

        Raises:
            BundleError: not listed, missing, or its hash differs (tampered or corrupted).
        """
        if name not in self.files:
            raise BundleError(f"{self.where(name)}: not listed in {MANIFEST}; the bundle is incomplete")
        data = self._raw(name)
        if sha256_bytes(data) != self.files[name]:
            raise BundleError(
                f"{self.where(name)}: sha256 does not match {MANIFEST}; the file was modified or "
                "corrupted after the bundle was created. Recreate it with `braintumor bundle create`."
            )
        return data

    def read_json(self, name: str) -> dict[str, Any]:
        """A verified JSON object."""
        try:
            value = json.loads(self.read(name))
        except json.JSONDecodeError as exc:
            raise BundleError(f"{self.where(name)}: not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise BundleError(f"{self.where(name)}: expected a JSON object")
        return value


def _zip_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    """Member name (without a single common top folder) -> ZipInfo; refuses unsafe members."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path}: unreadable zip archive ({exc})") from None
    tops = {i.filename.split("/", 1)[0] for i in infos}
    strip = len(tops) == 1 and all("/" in i.filename for i in infos)
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.split("/", 1)[1] if strip else info.filename
        if "/" in name or "\\" in name or name.startswith(".."):
            raise BundleError(f"{path}: member {info.filename!r} is in a subfolder; bundles are flat")
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError(f"{path}: member {info.filename!r} unpacks to {info.file_size} bytes; refused")
        members[name] = info
    return members
