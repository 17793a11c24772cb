"""SampleIndex: save/load round trips (CSV and Parquet) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from braintumor.data.index import Sample, SampleIndex
from braintumor.errors import DataError


def make_index(root: Path) -> SampleIndex:
    samples = [
        Sample("t", "a_1", "a", "glioma", 1, str(root / "a_1.png"), str(root / "a_1_mask.png"), 1),
        Sample("t", "b", "b", "meningioma", 0, str(root / "b.png"), "", -1, "test"),
    ]
    return SampleIndex.from_samples(
        samples, ["meningioma", "glioma"], extra={"official_folds": {"a_1": 2, "b": 5}}
    )


@pytest.mark.parametrize("name", ["index.csv", "index.parquet"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    index = make_index(tmp_path)
    index.save(tmp_path / name)
    text = (tmp_path / name).read_bytes()
    assert str(tmp_path).encode() not in text  # paths stored relative to the file
    back = SampleIndex.load(tmp_path / name)
    assert back.classes == ["meningioma", "glioma"]
    assert back.frame.equals(index.frame)
    assert back.for_patients(["b"]).frame["split"].tolist() == ["test"]
    assert back.extra["official_folds"] == {"a_1": 2, "b": 5}  # the splits still use them


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="sample index file not found"):
        SampleIndex.load(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("dataset,sample_id\nx,y\n")
    with pytest.raises(DataError, match=r"bad\.csv: missing column"):
        SampleIndex.load(tmp_path / "bad.csv")


def test_unknown_figshare_label(tmp_path: Path) -> None:
    from PIL import Image

    from braintumor.data.figshare import load_figshare_png

    (tmp_path / "images").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "images" / "1.png")
    (tmp_path / "tumor_metadata.csv").write_text("file,label\n1.png,7\n")
    with pytest.raises(DataError, match=r"tumor_metadata\.csv: unknown label '7' for 1\.png"):
        load_figshare_png(tmp_path)
