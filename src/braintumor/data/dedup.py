"""Copies of images across splits and datasets: exact files, re-encodings and left-right mirrors.

Each image becomes a 64×64 grayscale thumbnail (box filter), high-passed (minus its Gaussian blur,
sigma 2 px) and scaled to unit norm; the Pearson correlation of two such vectors is their
similarity, and a mirror is the best of the image and its left-right flip. High-passing removes
the shared shape of a brain slice: on the shared figshare slices, the nearest slice of *another*
patient correlates at most 0.81 (mirrors included), while a Kaggle copy of a figshare slice
correlates 0.90 or more (3,295 Kaggle Training images, with nothing between 0.70 and 0.90);
``scripts/copy_threshold.py`` measures this. Adjacent slices of the *same* patient reach 0.93, so
a match may be a neighbouring slice of the same patient, which is a leak all the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.data.index import SampleIndex
from braintumor.data.readers import read_image
from braintumor.errors import DataError

THUMBNAIL = 64
HIGHPASS_SIGMA = 2.0
COPY_THRESHOLD = 0.90
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CopyFeatures:
    """Unit-norm high-pass thumbnails (N×4096 float32), their mirrors, and file digests."""

    plain: np.ndarray
    mirrored: np.ndarray
    digests: list[str]


@dataclass(frozen=True)
class CopyMatch:
    """The closest reference image of one query image."""

    query: int
    reference: int
    score: float
    kind: str  # "exact" (same bytes), "near" (re-encoded/resized) or "mirror" (left-right flip)


def thumbnail(path: str | Path) -> np.ndarray:
    """64×64 float32 grayscale thumbnail of an image file (box-filtered)."""
    from PIL import Image

    array = read_image(path)
    if array.ndim == 3:
        array = array.mean(axis=2)
    array = np.asarray(array, np.float32)
    image = Image.fromarray(array, mode="F")
    return np.asarray(image.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX), np.float32)


def _unit_highpass(thumbs: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    flat = (thumbs - gaussian_filter(thumbs, sigma=(0, HIGHPASS_SIGMA, HIGHPASS_SIGMA))).reshape(
        len(thumbs), -1
    )
    flat = flat - flat.mean(axis=1, keepdims=True)
    return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)).astype(np.float32)


def _digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copy_features(paths: Sequence[str | Path], progress: Progress | None = None) -> CopyFeatures:
    """Decode every file once (two threads) into :class:`CopyFeatures`; bad files raise DataError."""
    if not paths:
        return CopyFeatures(
            np.zeros((0, THUMBNAIL**2), np.float32), np.zeros((0, THUMBNAIL**2), np.float32), []
        )
    thumbs, digests = [], []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (t, d) in enumerate(zip(pool.map(thumbnail, paths), pool.map(_digest, paths), strict=True)):
            thumbs.append(t)
            digests.append(d)
            if progress and ((i + 1) % 200 == 0 or i + 1 == len(paths)):
                progress(i + 1, len(paths))
    stack = np.stack(thumbs)
    return CopyFeatures(_unit_highpass(stack), _unit_highpass(stack[:, :, ::-1].copy()), digests)


def match_copies(
    query: CopyFeatures,
    reference: CopyFeatures,
    threshold: float = COPY_THRESHOLD,
    same_set: bool = False,
) -> list[CopyMatch]:
    """For each query image, its best reference match if it scores ``threshold`` or more.

    ``same_set``: query and reference are the same images; an image never matches itself.
    """
    matches: list[CopyMatch] = []
    index_of = {d: j for j, d in enumerate(reference.digests)}
    for start in range(0, len(query.digests), 512):
        stop = min(start + 512, len(query.digests))
        plain = query.plain[start:stop] @ reference.plain.T
        mirror = query.mirrored[start:stop] @ reference.plain.T
        if same_set:
            rows = np.arange(stop - start)
            plain[rows, rows + start] = mirror[rows, rows + start] = -1.0
        for row in range(stop - start):
            i = start + row
            j_exact = index_of.get(query.digests[i])
            if j_exact is not None and not (same_set and j_exact == i):
                matches.append(CopyMatch(i, j_exact, 1.0, "exact"))
                continue
            j_plain, j_mirror = int(plain[row].argmax()), int(mirror[row].argmax())
            best_plain, best_mirror = float(plain[row, j_plain]), float(mirror[row, j_mirror])
            if max(best_plain, best_mirror) < threshold:
                continue
            if best_plain >= best_mirror:
                matches.append(CopyMatch(i, j_plain, best_plain, "near"))
            else:
                matches.append(CopyMatch(i, j_mirror, best_mirror, "mirror"))
    return matches


@dataclass
class DuplicateReport:
    """Test images with a copy in training (and, with a reference dataset, in that dataset)."""

    threshold: float
    n_train: int
    n_test: int
    n_test_with_duplicate: int = 0
    n_cross_class: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    per_class: dict[str, int] = field(default_factory=dict)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    duplicate_test_ids: list[str] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split_parts(index: SampleIndex) -> tuple[Any, Any]:
    frame = index.frame
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    if train.empty or test.empty:
        raise DataError(
            "<index>", "the copy check needs both train and test splits (Training/Testing folders)"
        )
    return train, test


def find_duplicates(
    index: SampleIndex,
    threshold: float = COPY_THRESHOLD,
    progress: Progress | None = None,
    reference: SampleIndex | None = None,
) -> DuplicateReport:
    """Find each test image's copy among the training images (``split`` column).

    With ``reference`` (e.g. the figshare slices), also count the training and test images that
    are copies of a reference image; those test images count as having a copy in training.
    """
    train, test = _split_parts(index)
    features = copy_features(list(train["image"]) + list(test["image"]), progress)
    n_train = len(train)
    train_f = CopyFeatures(features.plain[:n_train], features.mirrored[:n_train], features.digests[:n_train])
    test_f = CopyFeatures(features.plain[n_train:], features.mirrored[n_train:], features.digests[n_train:])
    report = DuplicateReport(threshold, n_train, len(test))
    kinds = dict.fromkeys(("exact", "near", "mirror"), 0)
    with_copy: dict[int, dict[str, Any]] = {}
    for m in match_copies(test_f, train_f, threshold):
        row, match = test.iloc[m.query], train.iloc[m.reference]
        kinds[m.kind] += 1
        with_copy[m.query] = {
            "test": row["sample_id"],
            "train": match["sample_id"],
            "score": round(m.score, 4),
            "kind": m.kind,
            "test_label": row["label"],
            "train_label": match["label"],
        }
    if reference is not None:
        ref_f = copy_features(list(reference.frame["image"]), progress)
        in_ref_train = match_copies(train_f, ref_f, threshold)
        in_ref_test = match_copies(test_f, ref_f, threshold)
        report.reference = {
            "datasets": reference.datasets,
            "n_reference": len(reference),
            "n_train_copies": len(in_ref_train),
            "n_test_copies": len(in_ref_test),
        }
        for m in in_ref_test:
            row = test.iloc[m.query]
            with_copy.setdefault(
                m.query,
                {
                    "test": row["sample_id"],
                    "train": "",
                    "score": round(m.score, 4),
                    "kind": "reference",
                    "test_label": row["label"],
                    "train_label": "",
                },
            )
    per_class = dict.fromkeys(index.classes, 0)
    for q in sorted(with_copy):
        pair = with_copy[q]
        per_class[pair["test_label"]] += 1
        report.n_cross_class += bool(pair["train_label"]) and pair["train_label"] != pair["test_label"]
        report.duplicate_test_ids.append(pair["test"])
        report.pairs.append(pair)
    report.n_test_with_duplicate = len(with_copy)
    report.kinds, report.per_class = kinds, per_class
    return report


def drop_copies(
    index: SampleIndex, reference: SampleIndex, threshold: float = COPY_THRESHOLD
) -> tuple[SampleIndex, dict[str, Any]]:
    """``index`` without the images that are copies of (or slices next to) a ``reference`` image.

    Returns the kept index and a record of what was dropped (saved as ``excluded_copies.json``).
    """
    query = copy_features(list(index.frame["image"]))
    matches = match_copies(query, copy_features(list(reference.frame["image"])), threshold)
    ref_ids = list(reference.frame["sample_id"])
    dropped = [
        {
            "sample_id": str(index.frame["sample_id"].iloc[m.query]),
            "copy_of": str(ref_ids[m.reference]),
            "score": round(m.score, 4),
            "kind": m.kind,
        }
        for m in matches
    ]
    gone = {d["sample_id"] for d in dropped}
    kept = index.subset(~index.frame["sample_id"].isin(gone))
    record = {
        "reference": reference.datasets,
        "n_reference": len(reference),
        "threshold": threshold,
        "n_before": len(index),
        "n_dropped": len(dropped),
        "dropped": dropped,
    }
    return kept, record
