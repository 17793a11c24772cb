"""Segmentation-only bundles (no ROI classifier): create, verify, analyse, CLI, gate without classifier."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from inference_helpers import Trained, write_nifti
from typer.testing import CliRunner

from braintumor.bundle.checks import check_compatible, read_card
from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import Bundle, bundle_info, load_bundle
from braintumor.bundle.store import BundleError, write_manifest
from braintumor.cli import app
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import make_backend
from braintumor.inference.outputs import caption
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.results import TUMOUR_LABEL, SliceResult

runner = CliRunner()


class BrightSegmenter:
    """Scripted backend: tumour where the input is bright; a fixed-logit gate."""

    name = "scripted"

    def __init__(self, gate: list[float] | None = None) -> None:
        self.gate = np.asarray(gate or [0.0, 0.0], np.float32)
        self.roles: list[str] = []

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        self.roles.append(role)
        if role == "seg":
            return np.where(x[:, :1] > 0.5, 8.0, -8.0).astype(np.float32)
        return np.tile(self.gate, (len(x), 1))


def _image() -> np.ndarray:
    """40×56 uint8 slice with a bright 10×14 'tumour'."""
    image = (np.random.default_rng(0).random((40, 56)) * 40).astype(np.uint8)
    image[10:20, 30:44] = 250
    return image


def _scripted(bundle: Bundle, gate: list[float] | None = None) -> tuple[Analyzer, BrightSegmenter]:
    backend = BrightSegmenter(gate)
    return Analyzer(bundle, backend, AnalysisSettings.for_bundle(bundle)), backend  # type: ignore[arg-type]


def _json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- create and verify


def test_round_trip(seg_only_bundle: Path) -> None:
    info = bundle_info(seg_only_bundle)
    assert info["verified"] and info["has_classifier"] is False and info["format_version"] == 2
    assert info["classes"] == [] and info["expansion"] is None and set(info["models"]) == {"seg"}
    assert set(info["files"]) == {"bundle.json", "seg.json", "seg.safetensors"}
    bundle = load_bundle(seg_only_bundle)
    assert not bundle.has_classifier and bundle.expansion is None and bundle.classes == []
    assert bundle.gate is None and bundle.no_tumour_class == "notumor" and set(bundle.models) == {"seg"}


def test_zip_fp16_and_full_bundles_keep_version_1(trained: Trained, tmp_path: Path) -> None:
    path = create_bundle(trained.seg, None, tmp_path / "s.zip", fp16=True)
    small = load_bundle(path)
    assert small.info["dtype"] == "float16" and not small.has_classifier
    full = load_bundle(trained.bundle)
    assert full.has_classifier and full.info["format_version"] == 1


def test_tampering_is_still_detected(seg_only_bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(seg_only_bundle, tmp_path / "b"))
    weights = copy / "seg.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"seg\.safetensors: sha256 does not match"):
        load_bundle(copy)
    weights.write_bytes(original)
    info_path = copy / "bundle.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "classes": ["glioma", "notumor"]}))
    with pytest.raises(BundleError, match=r"bundle\.json: sha256 does not match"):
        load_bundle(copy)
    write_manifest(copy)  # consistent hashes, inconsistent content
    with pytest.raises(BundleError, match=r"must record expansion null and classes \[\]"):
        load_bundle(copy)
    info_path.write_text(json.dumps({**info, "models": {}}))
    write_manifest(copy)
    with pytest.raises(BundleError, match="'models' must hold 'seg'"):
        load_bundle(copy)


def test_full_bundle_without_its_classifier_entry_is_refused(bundle_copy: Path) -> None:
    info_path = bundle_copy / "bundle.json"
    info = json.loads(info_path.read_text())
    del info["models"]["cls"]
    info_path.write_text(json.dumps(info))
    write_manifest(bundle_copy)
    with pytest.raises(BundleError, match="without a classifier must record"):
        load_bundle(bundle_copy)


def test_checks_without_classifier(trained: Trained, tmp_path: Path) -> None:
    card = read_card(json.loads((trained.seg / "checkpoints" / "best.json").read_text()), "best.json")
    check_compatible(card, None, None, {"seg": "seg"})  # a segmenter alone can work
    with pytest.raises(BundleError, match="must be a segmentation model"):
        create_bundle(trained.cls, None, tmp_path / "a")
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- analysis


def test_analyze_real_models(seg_only_bundle: Path, trained: Trained) -> None:
    bundle = load_bundle(seg_only_bundle)
    analyzer = Analyzer(bundle, make_backend(bundle, "torch"))
    results = analyzer.analyze_files(trained.images(4))
    assert len(results) == 4
    for r in results:
        assert r.ok and r.label == (TUMOUR_LABEL if r.tumour else "notumor")
        assert r.probabilities == {} and r.gate_probabilities == {}
        assert r.uncertainty.classification is None


def test_scripted_image_volume_and_outputs(seg_only_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(seg_only_bundle)
    analyzer, backend = _scripted(bundle)
    image = analyzer.analyze(_image(), spacing=(0.5, 0.5))
    assert image.ok and image.tumour and image.label == TUMOUR_LABEL and image.probabilities == {}
    assert abs(image.area_px - 140) <= 28
    assert image.uncertainty.segmentation is None  # the bundle analyses without flip TTA: one view
    assert image.uncertainty.classification is None and set(backend.roles) == {"seg"}
    volume = np.stack([_image(), _image(), np.zeros((40, 56), np.uint8)], axis=2)  # last slice blank
    nifti = write_nifti(tmp_path / "scan.nii.gz", volume)
    (result,) = analyzer.analyze_files([nifti], tmp_path / "out")
    assert result.ok and result.kind == "volume" and result.tumour and result.tumour_slices == [0, 1]
    assert result.label == result.majority_label == TUMOUR_LABEL and result.probabilities == {}
    assert result.slices[2].skipped and result.slices[2].label == "notumor"
    assert result.volume_mm3 is not None and result.volume_mm3 > 0
    assert Path(result.outputs["mask_nifti"]).is_file() and Path(result.outputs["json"]).is_file()
    saved = json.loads(Path(result.outputs["json"]).read_text())
    assert saved["class"] == TUMOUR_LABEL and saved["probabilities"] == {}
    table = pd.read_csv(tmp_path / "out" / "analysis.csv")
    assert table.loc[0, "class"] == TUMOUR_LABEL and not any(c.startswith("prob_") for c in table.columns)
    assert len(pd.read_csv(tmp_path / "out" / "slices.csv")) == 3


def test_gradcam_is_skipped_with_one_warning(seg_only_bundle: Path) -> None:
    analyzer, _ = _scripted(load_bundle(seg_only_bundle))
    with pytest.warns(UserWarning, match="only segments"):
        first = analyzer.analyze(_image(), gradcam=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = analyzer.analyze(_image(), gradcam=True)
    for r in (first, second):
        assert r.ok and r.tumour and r.slices[0].heatmap is None


def test_caption_without_probabilities() -> None:
    hit = SliceResult(0, tumour=True, label=TUMOUR_LABEL, area_px=12)
    assert caption(hit) == "tumour | 12 px"
    assert caption(SliceResult(0, tumour=True, label="glioma", probabilities={"glioma": 0.9}, area_px=3)) == (
        "glioma 0.90 | 3 px"
    )


# ---------------------------------------------------------------- gate without classifier


def test_gate_without_classifier(trained: Trained, tmp_path: Path) -> None:
    """Allowed: the gate only decides tumour / no tumour, which needs no classifier."""
    path = create_bundle(trained.seg, None, tmp_path / "g", gate=trained.gate)
    bundle = load_bundle(path)
    assert not bundle.has_classifier and bundle.gate is not None and set(bundle.models) == {"seg", "gate"}
    no = bundle.no_tumour_class
    assert no in bundle.gate.classes
    n = len(bundle.gate.classes)
    veto = [6.0 if c == no else 0.0 for c in bundle.gate.classes]
    vetoed = _scripted(bundle, veto)[0].analyze(_image())
    assert vetoed.tumour is False and vetoed.label == no
    assert set(vetoed.probabilities) == set(bundle.gate.classes)  # the gate's, as with a classifier
    passed = _scripted(bundle, [-6.0 if c == no else 0.0 for c in bundle.gate.classes])[0].analyze(_image())
    assert passed.tumour and passed.label == TUMOUR_LABEL and passed.probabilities == {}
    assert len(passed.gate_probabilities) == n
    real = Analyzer(bundle, make_backend(bundle, "torch")).analyze(trained.images(1)[0])
    assert real.ok and real.label in (TUMOUR_LABEL, no)


# ---------------------------------------------------------------- CLI


def test_cli_create_export_and_analyze(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "b"
    created = _json(["bundle", "create", "--seg", str(trained.seg), "--out", str(out), "--json"])
    assert created["classes"] == [] and created["expansion"] is None and created["has_classifier"] is False
    shown = runner.invoke(app, ["bundle", "info", str(out)])
    assert shown.exit_code == 0 and "segmentation only" in shown.output
    exported = _json(["export", str(out), "--format", "onnx", "--json"])
    assert [Path(p).name for p in exported["written"]] == ["seg.onnx"]
    images = [str(p) for p in trained.images(3)]
    for backend in ("torch", "onnx"):
        report = _json(["analyze", *images, "--bundle", str(out), "--out", str(tmp_path / backend),
                        "--backend", backend, "--gradcam", "--json"])  # fmt: skip
        assert report["n_ok"] == 3 and report["backend"] == backend
        for entry in report["results"]:
            assert entry["class"] == (TUMOUR_LABEL if entry["tumour"] else "notumor")
            assert entry["probabilities"] == {} and entry["uncertainty"]["classification"] is None
            assert "gradcam" not in entry["outputs"]
    human = runner.invoke(app, ["analyze", images[0], "--bundle", str(out), "--out", str(tmp_path / "h"),
                                "--backend", "torch"])  # fmt: skip
    assert human.exit_code == 0 and "analysed" in human.output
