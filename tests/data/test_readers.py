"""Readers: every bad file gets a DataError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from braintumor.data.readers import read_image, read_mask
from braintumor.errors import DataError


def test_png_and_tif_round_trip(tmp_path: Path) -> None:
    gray = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48)
    Image.fromarray(gray).save(tmp_path / "a.png")
    rgb = np.stack([gray, gray // 2, gray // 3], axis=-1)
    tifffile.imwrite(tmp_path / "b.tif", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), gray)
    assert np.array_equal(read_image(tmp_path / "b.tif"), rgb)


def test_truncated_png_names_file(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.png: cannot decode"):
        read_image(tmp_path / "t.png")


@pytest.mark.parametrize("name", ["garbage.jpg", "garbage.tif", "garbage.png"])
def test_garbage_bytes(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"this is not an image" * 10)
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        read_image(tmp_path / name)


def test_missing_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="unsupported file type"):
        read_image(tmp_path / "x.gif")


def test_pixel_limit(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="exceeds the limit"):
        read_image(tmp_path / "big.png", max_pixels=5000)


def test_mask_encodings_and_errors(tmp_path: Path) -> None:
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:5] = 255
    Image.fromarray(m).save(tmp_path / "m255.png")
    Image.fromarray(m // 255).save(tmp_path / "m1.png")
    assert read_mask(tmp_path / "m255.png").sum() == 6
    assert read_mask(tmp_path / "m1.png").sum() == 6
    bad = m.copy()
    bad[0, 0] = 17
    Image.fromarray(bad).save(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"bad\.png: mask values .* not binary"):
        read_mask(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"m1\.png: mask shape 8x8 differs from its image 16x16"):
        read_mask(tmp_path / "m1.png", expected_shape=(16, 16))


def test_bad_tiff_log_line_becomes_the_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """tifffile logs a broken first-page offset to stderr; the reader keeps it for its message."""
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(
        DataError, match=r"bad\.tif: cannot decode TIFF: no image page \(invalid offset to first page"
    ):
        read_image(tmp_path / "bad.tif")
    assert "tifffile" not in capfd.readouterr().err


def test_many_page_tiff_names_its_page_count(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((7, 16, 16), np.uint8))
    with pytest.raises(DataError, match=r"stack\.tif: TIFF has 7 pages: not a 2D slice; save each slice"):
        read_image(tmp_path / "stack.tif")
