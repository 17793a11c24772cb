"""Measure the copy threshold of ``data/dedup.py`` on known pairs of the shared data.

Known copies: every figshare slice re-encoded as the Kaggle release stores it (longer side 160 px,
JPEG quality 90; half of them mirrored), scored against its source. Known non-copies: each figshare
slice's nearest slice of another patient (mirrors included), and, for context, of the same patient.
Also prints how the real Kaggle Training images' best figshare scores fall around the threshold.

    python scripts/copy_threshold.py ../shared/data
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.data.dedup import COPY_THRESHOLD, copy_features
from braintumor.data.loaders import load_dataset


def kaggle_style_copies(paths: list[str], folder: Path) -> list[Path]:
    out = []
    for i, path in enumerate(paths):
        image = Image.open(path).convert("L").resize((160, 160), Image.Resampling.BILINEAR)
        if i % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        (folder / f"{i}.jpg").write_bytes(buffer.getvalue())
        out.append(folder / f"{i}.jpg")
    return out


def best(query: np.ndarray, mirrored: np.ndarray, reference: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    scores = np.maximum(query @ reference.T, mirrored @ reference.T)
    return np.where(exclude, -1.0, scores).max(axis=1)


def main(shared: Path) -> None:
    figshare = load_dataset(shared / "figshare")
    paths = list(figshare.frame["image"])
    source = copy_features(paths)
    with tempfile.TemporaryDirectory() as tmp:
        copies = copy_features(kaggle_style_copies(paths, Path(tmp)))
    own = np.maximum((copies.plain * source.plain).sum(1), (copies.mirrored * source.plain).sum(1))
    patients = figshare.frame["patient_id"].to_numpy()
    same = patients[:, None] == patients[None, :]
    other = best(source.plain, source.mirrored, source.plain, same)
    neighbour = best(source.plain, source.mirrored, source.plain, ~same | np.eye(len(paths), dtype=bool))
    kaggle = load_dataset(shared / "kaggle4")
    train = copy_features(list(kaggle.frame[kaggle.frame["split"] == "train"]["image"]))
    real = best(train.plain, train.mirrored, source.plain, np.zeros((1, len(paths)), bool))
    q = (0.0, 0.001, 0.01, 0.5, 0.99, 0.999, 1.0)
    print(f"threshold {COPY_THRESHOLD}; quantiles {q}")
    print("known copies (re-encoded, half mirrored):", np.round(np.quantile(own, q), 3))
    print("nearest slice of another patient:        ", np.round(np.quantile(other, q), 3))
    print("nearest slice of the same patient:       ", np.round(np.quantile(neighbour[neighbour > -1], q), 3))
    edges = [0, 0.5, 0.7, 0.8, COPY_THRESHOLD, 0.95, 1.01]
    print("Kaggle Training best figshare score, counts per bin", edges, np.histogram(real, edges)[0].tolist())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
