"""Benchmark: one pass over a dataset decoding every file vs one pass over the memory-mapped cache.

Usage: python benchmarks/cache.py [DATA] (default ../shared/data/lgg/kaggle_3m)
Prints a JSON object with both rates and their ratio (target: cached >= 20x decoding).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from braintumor.config import Preprocessing
from braintumor.data.cache import _decode_patient, build_cache
from braintumor.data.dataset import CachedDataset
from braintumor.data.loaders import load_dataset


def main() -> None:
    path = Path(
        sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1].parent / "shared/data/lgg/kaggle_3m"
    )
    index = load_dataset(path)
    prep = Preprocessing(image_size=256, normalization="percentile-volume")
    groups = [list(g) for g in index.frame.groupby("patient_id", sort=False).indices.values()]
    channels = 3 if index.datasets == ["lgg"] else 1

    start = time.perf_counter()
    n = sum(len(_decode_patient(index, g, prep, channels)) for g in groups)
    decode_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        store = build_cache(index, prep, tmp, workers=1)
        dataset = CachedDataset(store)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            checksum = 0.0
            for i in range(len(dataset)):
                sample = dataset[i]
                checksum += float(sample["image"][0, 0, 0])
            best = min(best, time.perf_counter() - start)
        assert np.isfinite(checksum)
    result = {
        "data": str(path),
        "samples": n,
        "decode_samples_per_s": round(n / decode_s, 1),
        "cached_samples_per_s": round(len(dataset) / best, 1),
        "ratio": round(decode_s / best, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
