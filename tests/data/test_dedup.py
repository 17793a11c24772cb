"""Copy detection: exact files, re-encodings, left-right mirrors; Kaggle copies of figshare slices."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.data.dedup import COPY_THRESHOLD, copy_features, drop_copies, find_duplicates, match_copies
from braintumor.data.loaders import load_dataset
from braintumor.data.phantom import generate_phantoms


def _slices(tmp_path: Path, n: int = 4, seed: int = 3) -> list[Path]:
    index = generate_phantoms(
        tmp_path / "ph", n_patients=n, slices_per_patient=1, size=192, channels=1, seed=seed
    )
    return [Path(p) for p in index.frame["image"]]


def _reencode(
    source: Path, target: Path, scale: float = 0.6, quality: int = 75, mirror: bool = False
) -> Path:
    image = Image.open(source).convert("L")
    image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BILINEAR)
    if mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    target.write_bytes(buffer.getvalue())
    return target


def test_exact_reencoded_and_mirrored_copies_are_found_and_others_are_not(tmp_path: Path) -> None:
    originals = _slices(tmp_path)
    exact = tmp_path / "exact.png"
    shutil.copy(originals[0], exact)
    queries = [
        exact,
        _reencode(originals[1], tmp_path / "small.jpg"),
        _reencode(originals[2], tmp_path / "mirror.jpg", mirror=True),
        originals[3],
    ]
    matches = match_copies(copy_features(queries), copy_features(originals[:3]))
    found = {m.query: (m.reference, m.kind) for m in matches}
    assert found == {0: (0, "exact"), 1: (1, "near"), 2: (2, "mirror")}
    assert all(m.score >= COPY_THRESHOLD for m in matches)


def test_an_image_never_matches_itself_within_one_set(tmp_path: Path) -> None:
    originals = _slices(tmp_path)
    features = copy_features(originals)
    assert match_copies(features, features, same_set=True) == []
    assert len(match_copies(features, features)) == len(originals)


def _class_folders(root: Path, originals: list[Path]) -> Path:
    for i, path in enumerate(originals):
        (root / "Training" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / "Training" / f"c{i % 2}" / f"tr{i}.png")
    (root / "Testing" / "c0").mkdir(parents=True)
    (root / "Testing" / "c1").mkdir(parents=True)
    _reencode(originals[0], root / "Testing" / "c0" / "te_copy.jpg", mirror=True)
    other = _slices(root.parent / "other", n=1, seed=11)[0]
    shutil.copy(other, root / "Testing" / "c1" / "te_new.png")
    return root


def test_report_and_drop_record_name_each_copy(tmp_path: Path) -> None:
    data = _class_folders(tmp_path / "data", _slices(tmp_path))
    index = load_dataset(data)
    report = find_duplicates(index)
    assert (report.n_train, report.n_test, report.n_test_with_duplicate) == (4, 2, 1)
    assert report.kinds == {"exact": 0, "near": 0, "mirror": 1}
    assert report.pairs[0]["test"] == "Testing/c0/te_copy" and report.pairs[0]["train"] == "Training/c0/tr0"
    train_only = index.subset(index.frame["split"] == "train")
    kept, record = drop_copies(index, train_only.subset([0]))
    assert record["n_before"] == 6 and record["n_dropped"] == 2 and len(kept) == 4
    assert {d["sample_id"] for d in record["dropped"]} == {"Training/c0/tr0", "Testing/c0/te_copy"}
    json.dumps(record)  # plain JSON


@pytest.mark.realdata
def test_kaggle_copies_of_figshare_slices_plain_and_mirrored(shared_data: Path, tmp_path: Path) -> None:
    """Two known Kaggle copies of figshare slices (one upright, one mirrored), a few of each dataset."""
    kaggle, figshare = shared_data / "kaggle4", load_dataset(shared_data / "figshare")
    data = tmp_path / "k4"
    for split, files in {
        "Testing": ["glioma/Tr-gl_0010.jpg", "glioma/Tr-gl_0122.jpg", "notumor/Te-no_0016.jpg"],
        "Training": ["meningioma/Tr-me_0029.jpg", "notumor/Tr-no_0010.jpg"],
    }.items():
        for name in files:
            (data / split / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(next((kaggle).glob(f"*/{name}")), data / split / name)
    reference = figshare.subset(figshare.frame["sample_id"].isin(["2658", "1901", "1", "900", "2000"]))
    report = find_duplicates(load_dataset(data), reference=reference)
    assert report.reference["n_test_copies"] == 2
    found = {p["test"]: p["kind"] for p in report.pairs}
    assert found == {"Testing/glioma/Tr-gl_0010": "reference", "Testing/glioma/Tr-gl_0122": "reference"}
    dropped = drop_copies(load_dataset(data), reference)[1]["dropped"]
    assert {(d["copy_of"], d["kind"]) for d in dropped} == {("2658", "near"), ("1901", "mirror")}
    assert np.isfinite([d["score"] for d in dropped]).all()
