"""Decode once into a memory-mapped array store; later epochs never touch JPEG/TIF/MAT again.

A store is a folder ``<cache_dir>/<key>/`` with ``images.npy`` (N×C×S×S float16, normalised),
``masks.npy`` (N×1×S×S uint8, when the dataset has masks) and ``meta.json``. The key hashes the
sample list (paths, sizes, modification times) and every preprocessing setting, so a change to
either builds a new store. Stores are built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from braintumor.config import Preprocessing
from braintumor.data.index import SampleIndex
from braintumor.data.preprocess import normalised, resize_square, to_channels_first
from braintumor.data.readers import read_image, read_mask
from braintumor.errors import DataError

CACHE_VERSION = 1


@dataclass
class ArrayStore:
    """Decoded, preprocessed samples. Row i is ``index.frame`` row ``rows[i]``."""

    path: Path
    images: np.ndarray
    masks: np.ndarray | None
    labels: np.ndarray
    sample_ids: list[str]
    patient_ids: list[str]
    rows: np.ndarray
    meta: dict[str, object]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def with_masks(self, positions: Sequence[int], part: str) -> list[int]:
        """The ``positions`` whose slice came with a mask file.

        A slice without one (the loaders keep it, ``data inspect`` reports it) has no ground truth,
        which is not the same as no tumour: segmentation leaves it out of ``part`` (training,
        validation or scoring) with a warning naming a few, instead of learning and scoring it as
        tumour-free.
        """
        known = self.meta.get("has_mask")
        if self.masks is None or not isinstance(known, list):
            return list(positions)
        missing = [self.sample_ids[p] for p in positions if not known[p]]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            warnings.warn(
                f"{len(missing)} of {len(positions)} {part} slices have no mask file ({shown}); "
                "segmentation leaves them out rather than treat them as tumour-free",
                UserWarning,
                stacklevel=2,
            )
        return [p for p in positions if known[p]]

    @classmethod
    def open(cls, path: Path) -> ArrayStore:
        """Open an existing store read-only (memory-mapped)."""
        meta = json.loads((path / "meta.json").read_text())
        masks_file = path / "masks.npy"
        return cls(
            path,
            np.load(path / "images.npy", mmap_mode="r"),
            np.load(masks_file, mmap_mode="r") if masks_file.is_file() else None,
            np.asarray(meta["labels"], dtype=np.int64),
            list(meta["sample_ids"]),
            list(meta["patient_ids"]),
            np.asarray(meta["rows"], dtype=np.int64),
            meta,
        )


def default_cache_dir() -> Path:
    """``$BRAINTUMOR_CACHE`` or ``~/.cache/braintumor``."""
    return Path(os.environ.get("BRAINTUMOR_CACHE", Path.home() / ".cache" / "braintumor"))


def cache_key(index: SampleIndex, prep: Preprocessing) -> str:
    """Hash of the samples' files (path, size, mtime) and the preprocessing settings."""
    settings = prep.to_dict()
    settings.pop("context_slices", None)  # stacked when read (CachedDataset), not stored
    if not prep.roi_coords:
        settings.pop("roi_coords", None)  # stores built before the option keep their keys
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, settings]).encode())
    for row in index.frame.itertuples(index=False):
        for p in (row.image, row.mask):
            stat = os.stat(p) if p else None
            digest.update(f"{row.sample_id}|{p}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
        digest.update(f"{row.patient_id}|{row.label_index}".encode())
    return digest.hexdigest()[:20]


def _decode_patient(
    index: SampleIndex, rows: list[int], prep: Preprocessing, channels: int
) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
    """Decode, normalise and resize one patient's slices; drop empty-mask slices for ROI crops."""
    frame = index.frame
    images, masks = [], []
    for r in rows:
        raw = read_image(frame.at[r, "image"])
        images.append(to_channels_first(raw, channels))
        mask_path = frame.at[r, "mask"]
        masks.append(read_mask(mask_path, raw.shape[:2]) if mask_path else None)
    images = normalised(images, [prep], volume=True)[0]  # one patient's slices
    out = []
    for r, image, mask in zip(rows, images, masks, strict=True):
        if prep.roi_expansion is not None:
            if mask is None or not mask.any():
                continue
            from braintumor.data.roi import crop_roi

            image, mask = crop_roi(image, mask, prep.roi_expansion, prep.image_size, prep.roi_coords)
        else:
            image, mask = resize_square(image, prep.image_size, mask)
        out.append((r, image, mask))
    return out


def _native_channels(index: SampleIndex) -> int:
    raw = read_image(index.frame.at[0, "image"])
    return 1 if raw.ndim == 2 else raw.shape[2]


def build_cache(
    index: SampleIndex,
    prep: Preprocessing,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
) -> ArrayStore:
    """Return the store for ``index`` + ``prep``, decoding every file once if it is not cached yet.

    Args:
        progress: called with (patients done, patients total) while building.
        workers: decoding threads (PIL, tifffile and h5py release the GIL while decoding).
    """
    if len(index) == 0:
        raise DataError("<index>", "the sample index is empty; nothing to cache")
    prep = replace(prep, context_slices=0)  # the store holds single slices either way
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = root / cache_key(index, prep)
    if (path / "meta.json").is_file():
        return ArrayStore.open(path)
    channels = prep.channels or _native_channels(index)
    groups = [list(g) for g in index.frame.groupby("patient_id", sort=False).indices.values()]
    results: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, decoded in enumerate(pool.map(lambda g: _decode_patient(index, g, prep, channels), groups)):
            results.update({r: (im, m) for r, im, m in decoded})
            if progress:
                progress(done + 1, len(groups))
    if not results:
        raise DataError("<index>", "no sample survived preprocessing (ROI crops need non-empty masks)")
    return _write_store(index, prep, path, results, channels)


def _write_store(
    index: SampleIndex,
    prep: Preprocessing,
    path: Path,
    results: dict[int, tuple[np.ndarray, np.ndarray | None]],
    channels: int,
) -> ArrayStore:
    from braintumor.data.roi import coord_channels

    rows = [int(r) for r in sorted(results)]
    size, stored = prep.image_size, channels + coord_channels(prep.to_dict())
    has_masks = any(results[r][1] is not None for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        images = np.lib.format.open_memmap(
            tmp / "images.npy", "w+", np.float16, (len(rows), stored, size, size)
        )
        masks = None
        if has_masks:
            masks = np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (len(rows), 1, size, size))
        for i, r in enumerate(rows):
            image, mask = results[r]
            images[i] = image
            if masks is not None:
                masks[i, 0] = mask if mask is not None else 0
        images.flush()
        if masks is not None:
            masks.flush()
        frame = index.frame.iloc[rows]
        meta = {
            "version": CACHE_VERSION,
            "preprocessing": prep.to_dict(),
            "channels": channels,  # image channels (without roi_coords' position channels)
            "classes": index.classes,
            "rows": rows,
            "labels": [int(v) for v in frame["label_index"]],
            "sample_ids": frame["sample_id"].tolist(),
            "patient_ids": frame["patient_id"].tolist(),
            "has_mask": [results[r][1] is not None for r in rows],
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished the same store first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ArrayStore.open(path)
