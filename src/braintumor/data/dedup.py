"""Near-duplicate report for class-folder datasets (perceptual hashes across Training/Testing)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from braintumor.data.index import SampleIndex
from braintumor.data.readers import read_image
from braintumor.errors import DataError


@dataclass
class DuplicateReport:
    """Test images with a near-duplicate (pHash Hamming distance <= threshold) in training."""

    threshold: int
    n_train: int
    n_test: int
    n_test_with_duplicate: int = 0
    n_cross_class: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    duplicate_test_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def perceptual_hash(path: str, hash_size: int = 8) -> np.ndarray:
    """64-bit DCT perceptual hash (ImageHash's pHash) of an image file, as a bool vector."""
    import imagehash
    from PIL import Image

    array = read_image(path)
    if array.ndim == 3:
        array = array.mean(axis=2)
    lo, hi = float(array.min()), float(array.max())
    gray = ((array - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)
    return np.asarray(imagehash.phash(Image.fromarray(gray), hash_size=hash_size).hash).ravel()


def find_duplicates(
    index: SampleIndex,
    threshold: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> DuplicateReport:
    """Compare every test image's hash with every training image's hash.

    Uses the index's ``split`` column (``train``/``test``); unreadable files raise DataError.
    """
    frame = index.frame
    train = frame[frame["split"] == "train"]
    test = frame[frame["split"] == "test"]
    if train.empty or test.empty:
        raise DataError("<index>", "near-duplicate check needs both train and test splits (Training/Testing)")
    paths = list(train["image"]) + list(test["image"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = []
        for i, h in enumerate(pool.map(perceptual_hash, paths)):
            hashes.append(h)
            if progress and (i + 1) % 100 == 0:
                progress(i + 1, len(paths))
    bits = np.stack(hashes).astype(np.uint8)
    train_bits, test_bits = bits[: len(train)], bits[len(train) :]
    distances = np.concatenate(  # chunks of 256 test images keep memory at 256 x n_train x 64 bytes
        [
            (chunk[:, None, :] != train_bits[None, :, :]).sum(axis=2)
            for chunk in np.split(test_bits, range(256, len(test_bits), 256))
        ]
    )
    report = DuplicateReport(threshold, len(train), len(test))
    per_class = dict.fromkeys(index.classes, 0)
    for t, row in enumerate(test.itertuples(index=False)):
        j = int(distances[t].argmin())
        if distances[t, j] > threshold:
            continue
        match = train.iloc[j]
        report.n_test_with_duplicate += 1
        per_class[row.label] += 1
        report.n_cross_class += match["label"] != row.label
        report.duplicate_test_ids.append(row.sample_id)
        report.pairs.append(
            {"test": row.sample_id, "train": match["sample_id"], "distance": int(distances[t, j]),
             "test_label": row.label, "train_label": match["label"]}
        )  # fmt: skip
    report.per_class = per_class
    return report
