"""Bad inputs: each gets a clear error naming it, the batch continues, the CSV records why."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from inference_helpers import Trained, phantom_array, write_dicom, write_nifti, write_tiff
from PIL import Image

from braintumor.inference.analyzer import Analyzer


def _bad_files(trained: Trained, folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, regex its error must match)."""
    image = phantom_array(trained)
    folder.mkdir()
    png = folder / "good.png"
    Image.fromarray(image).save(png)
    truncated = folder / "truncated.png"
    truncated.write_bytes(png.read_bytes()[:60])
    text = folder / "notes.png"
    text.write_text("this is not an image")
    nii = write_nifti(folder / "vol.nii.gz", np.stack([image] * 3, axis=2))
    cut_nii = folder / "cut.nii.gz"
    cut_nii.write_bytes(nii.read_bytes()[: nii.stat().st_size // 2])
    dcm = write_dicom(folder / "one.dcm", image.astype(np.uint16), 1, 0.0, "1.2.3")
    cut_dcm = folder / "cut.dcm"
    cut_dcm.write_bytes(dcm.read_bytes()[:400])
    cut_pixels = folder / "cut_pixels.dcm"
    cut_pixels.write_bytes(dcm.read_bytes()[:-100])
    nan = image.astype(np.float32)
    nan[3, 4] = np.nan
    two, stack, flat = np.stack([image, image], axis=2), np.stack([image] * 5), image.astype(np.float32)
    return {
        "truncated": (truncated, r"truncated\.png: cannot decode image.*truncated"),
        "not an image": (text, r"notes\.png: cannot decode image"),
        "unsupported": (_write(folder / "scan.xyz", b"data"), r"scan\.xyz: unsupported file type"),
        "missing": (folder / "missing.png", r"missing\.png: file not found"),
        "2 channels": (write_tiff(folder / "two.tif", two), r"two\.tif.*not a 2D"),
        "3D stack as image": (write_tiff(folder / "stack.tif", stack), r"stack\.tif.*not a 2D"),
        "2D NIfTI": (write_nifti(folder / "flat.nii", flat), r"flat\.nii.*not a 3D volume"),
        "truncated NIfTI": (cut_nii, r"cut\.nii\.gz: cannot (read|decode) NIfTI"),
        "truncated DICOM": (cut_dcm, r"cut\.dcm: .*truncated"),
        "truncated DICOM pixels": (cut_pixels, r"cut_pixels\.dcm: cannot decode DICOM pixels"),
        "all zero": (_png(folder / "zero.png", np.zeros_like(image)), r"zero\.png: image is blank"),
        "NaN": (write_tiff(folder / "nan.tif", nan), r"nan\.tif: 1 pixels are NaN"),
        "NaN volume": (write_nifti(folder / "nan.nii", np.stack([nan] * 2, axis=2)), r"nan\.nii: 2 pixels"),
        "zero volume": (write_nifti(folder / "z.nii", np.zeros((8, 8, 3), np.int16)), r"z\.nii: every slice"),
    }  # fmt: skip


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_each_bad_input_fails_alone(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    bad = _bad_files(trained, tmp_path / "in")
    good = tmp_path / "in" / "good.png"
    paths = [good, *(p for p, _ in bad.values()), good]
    results = analyzer.analyze_files(paths, tmp_path / "out")
    assert results[0].ok and results[-1].ok, (results[0].error, results[-1].error)
    for (name, (_, pattern)), r in zip(bad.items(), results[1:-1], strict=True):
        assert not r.ok, name
        assert re.search(pattern, r.error), f"{name}: {r.error!r} does not match {pattern!r}"
    table = pd.read_csv(tmp_path / "out" / "analysis.csv")
    assert len(table) == len(paths)
    assert table["ok"].tolist() == [True] + [False] * len(bad) + [True]
    assert table["error"].fillna("").str.len().gt(0).tolist()[1:-1] == [True] * len(bad)


def test_pixel_limit(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    small = Analyzer(analyzer.bundle, analyzer.backend, replace(analyzer.settings, max_pixels=500))
    png = _png(tmp_path / "big.png", phantom_array(trained))
    nii = write_nifti(tmp_path / "big.nii", np.stack([phantom_array(trained)] * 2, axis=2))
    dcm = write_dicom(tmp_path / "big.dcm", phantom_array(trained).astype(np.uint16), 1, 0.0, "1.2")
    results = small.analyze_files([png, nii, dcm])
    assert not any(r.ok for r in results)
    assert "exceeds the limit of 500" in results[0].error and "big.png" in results[0].error
    assert "exceeds the limits" in results[1].error and "big.dcm" in results[2].error
    few = Analyzer(analyzer.bundle, analyzer.backend, replace(analyzer.settings, max_slices=1))
    assert "1 slices" in few.analyze(nii).error


def test_bad_arrays(analyzer: Analyzer) -> None:
    assert "not a 2D slice" in analyzer.analyze(np.zeros((5, 32, 32))).error  # 3D where 2D expected
    assert "not a 2D slice" in analyzer.analyze(np.zeros((32, 32, 2))).error
    assert "blank" in analyzer.analyze(np.zeros((32, 32))).error
    nan = np.ones((32, 32), np.float32)
    nan[0, 0] = np.inf
    assert "NaN or infinite" in analyzer.analyze(nan).error
    assert "not numeric" in analyzer.analyze(np.full((4, 4), "a")).error


def test_rgb_input_follows_training_channels(trained: Trained, analyzer: Analyzer) -> None:
    gray = phantom_array(trained)
    rgb = analyzer.analyze(np.stack([gray] * 3, axis=2))
    assert rgb.ok and rgb.probabilities == pytest.approx(analyzer.analyze(gray).probabilities, abs=1e-5)


def test_channel_mismatch_with_native_channels(trained: Trained, analyzer: Analyzer) -> None:
    from dataclasses import replace

    from braintumor.bundle.load import BundleModel
    from braintumor.inference.prepare import normalised
    from braintumor.inference.sources import Scan

    seg = analyzer.bundle.models["seg"]
    card = replace(seg.card, preprocessing=replace(seg.prep, channels=0))
    native = BundleModel("seg", card, seg.net, "x")
    gray = phantom_array(trained)
    colour = np.stack([gray, gray // 2, gray], axis=2)[None]
    with pytest.raises(Exception, match=r"lgg\.png: has 3 channel\(s\) but the seg model was trained on 1"):
        normalised(Scan("lgg.png", "lgg", "image", colour), native)
    same = np.stack([gray] * 3, axis=2)[None]  # a grayscale image stored as RGB is accepted
    assert normalised(Scan("g.png", "g", "image", same), native).shape == (1, 1, 32, 32)


def test_empty_folder(analyzer: Analyzer, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    result = analyzer.analyze_files([tmp_path / "empty"])[0]
    assert not result.ok and "holds no supported images" in result.error
