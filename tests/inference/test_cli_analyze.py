"""CLI: bundle create / info, export, analyze --json (shape of the one JSON object, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inference_helpers import Trained, tumour_images, write_dicom
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.inference.analyzer import Analyzer

runner = CliRunner()
ENTRY_KEYS = {"input", "ok", "error", "tumour", "class", "probabilities", "area_px", "uncertainty", "outputs"}


def _flat(text: str) -> str:
    """Rich wraps long error lines; compare with single spaces."""
    return " ".join(text.split())


def _json(args: list[str], code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bundle_cli_round_trip(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "b"
    created = _json(["bundle", "create", "--seg", str(trained.seg), "--cls", str(trained.cls), "--gate",
                     str(trained.gate), "--out", str(out), "--name", "tiny", "--fp16", "--json"])  # fmt: skip
    assert created["name"] == "tiny" and created["verified"] and created["dtype"] == "float16"
    info = _json(["bundle", "info", str(out), "--json"])
    assert info["onnx"] == [] and set(info["models"]) == {"seg", "cls", "gate"}
    exported = _json(["export", str(out), "--format", "onnx", "--json"])
    assert sorted(Path(p).name for p in exported["written"]) == ["cls.onnx", "gate.onnx", "seg.onnx"]
    assert _json(["bundle", "info", str(out), "--json"])["onnx"] == ["cls.onnx", "gate.onnx", "seg.onnx"]
    result = runner.invoke(app, ["bundle", "info", str(out)])
    assert result.exit_code == 0 and "sha256 verified" in result.output


def test_analyze_json(trained: Trained, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images = [str(p) for p in trained.images(2)]
    report = _json(["analyze", *images, str(broken), "--bundle", str(trained.bundle), "--out",
                    str(tmp_path / "out"), "--backend", "onnx", "--gradcam", "--json"])  # fmt: skip
    assert report["backend"] == "onnx" and report["n_ok"] == 2 and report["n_failed"] == 1
    assert [r["input"] for r in report["results"]] == [*images, str(broken)]
    for entry in report["results"]:
        assert set(entry) >= ENTRY_KEYS
    good, bad = report["results"][0], report["results"][2]
    assert good["ok"] and good["error"] == "" and isinstance(good["area_px"], int)
    assert set(good["uncertainty"]) == {"segmentation", "classification"}
    assert all(Path(p).is_file() for p in good["outputs"].values())
    assert not bad["ok"] and "broken.png" in bad["error"] and bad["outputs"] == {}
    assert Path(report["csv"]).is_file()


def test_analyze_exit_codes_and_errors(trained: Trained, tmp_path: Path, bundle_copy: Path) -> None:
    missing = tmp_path / "missing.png"
    report = _json(["analyze", str(missing), "--bundle", str(trained.bundle), "--out", str(tmp_path / "o"),
                    "--json"], code=1)  # fmt: skip
    assert report["n_ok"] == 0 and "file not found" in report["results"][0]["error"]
    (bundle_copy / "seg.json").write_text("{}")
    result = runner.invoke(app, ["analyze", str(trained.images(1)[0]), "--bundle", str(bundle_copy),
                                 "--out", str(tmp_path / "o2")])  # fmt: skip
    assert result.exit_code == 1 and "seg.json: sha256 does not match" in _flat(result.output)


def test_analyze_without_installed_bundles_says_how_to_pass_one(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("braintumor.bundle.load.resources.files", lambda _: tmp_path)  # no bundles
    result = runner.invoke(app, ["analyze", str(trained.images(1)[0]), "--out", str(tmp_path / "o")])
    message = _flat(result.output)
    assert result.exit_code == 1 and "default 't1ce' model bundle is not installed" in message
    assert "--bundle" in message


def test_analyze_human_output(trained: Trained, tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(trained.images(1)[0]), "--bundle", str(trained.bundle),
                                 "--out", str(tmp_path), "--min-area", "5", "--no-postprocess"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "analysed" in result.output and (tmp_path / "analysis.csv").is_file()


def test_analyze_dicom_seg(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    for k, image in enumerate(tumour_images(trained, analyzer, 2)):
        write_dicom(series / f"{k}.dcm", image, k + 1, 5.0 * k, "1.2.826.0.1.3680043.8.498.31")
    png = trained.images(1)[0]
    args = ["analyze", str(series), str(png), "--bundle", str(trained.bundle), "--backend", "onnx",
            "--dicom-seg", "--out"]  # fmt: skip
    report = _json([*args, str(tmp_path / "out"), "--json"])
    dicom, image = report["results"]
    assert report["n_ok"] == 2 and dicom["notes"] == [] and image["ok"]
    seg = Path(dicom["outputs"]["dicom_seg"])
    assert seg == tmp_path / "out" / "series_seg.dcm" and seg.is_file()
    assert "dicom_seg" not in image["outputs"] and "DICOM SEG needs DICOM source images" in image["notes"][0]
    text = runner.invoke(app, [*args, str(tmp_path / "out2")])
    assert text.exit_code == 0, text.output
    assert f"note: {png}: no DICOM SEG written: DICOM SEG needs DICOM source images" in _flat(text.stderr)


def test_analyze_tta_switch_sets_the_segmentation_uncertainty(
    trained: Trained, analyzer: Analyzer, tmp_path: Path
) -> None:
    """--tta adds the mirror (its disagreement is the uncertainty); --no-tta leaves it unknown."""
    images = trained.images(16)
    image = next(p for p, r in zip(images, analyzer.analyze_files(images), strict=True) if r.tumour)
    base = ["analyze", str(image), "--bundle", str(trained.bundle), "--json", "--out"]
    with_tta = _json([*base, str(tmp_path / "tta"), "--tta"])["results"][0]
    without = _json([*base, str(tmp_path / "plain"), "--no-tta"])["results"][0]
    assert with_tta["tumour"] and isinstance(with_tta["uncertainty"]["segmentation"], float)
    assert without["uncertainty"]["segmentation"] is None
