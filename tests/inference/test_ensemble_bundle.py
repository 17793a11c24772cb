"""Bundles holding an ensemble of ROI classifiers (cls, cls2...): create -> info -> load -> analyse,
each member cropping at its own expansion factor, and members that cannot be averaged refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import Trained
from PIL import Image
from typer.testing import CliRunner

from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import ENSEMBLE_FORMAT_VERSION, Bundle, bundle_info, load_bundle
from braintumor.bundle.store import BundleError, write_manifest
from braintumor.cli import app
from braintumor.data.roi import WHOLE_IMAGE_EXPANSION
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.runtime.fusion import MASK_CONFIDENCE_FLOOR, renormalised

LOGITS = {
    "cls": [1.0, 0.2, 3.0, -0.5],
    "cls2": [-1.0, 2.0, 0.0, 0.5],
}  # glioma, meningioma, notumor, pituitary
GATE_LOGITS = [0.0, 1.0, -5.0, 0.0]
WIDE = 3.0


def _member(run: Path, dest: Path, **preprocessing: object) -> Path:
    """A copy of classification ``run`` whose weights record other preprocessing (same weights)."""
    copy = Path(shutil.copytree(run, dest))
    card_path = copy / "checkpoints" / "best.json"
    card = json.loads(card_path.read_text())
    card["preprocessing"].update(preprocessing)
    card_path.write_text(json.dumps(card))
    return copy


@pytest.fixture(scope="module")
def ensemble(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bundle create`` with the session's classifier and a copy of it cropping at ``WIDE``."""
    root = tmp_path_factory.mktemp("ensemble")
    wide = _member(trained.cls, root / "cls-wide", roi_expansion=WIDE)
    args = ["bundle", "create", "--seg", str(trained.seg), "--cls", str(trained.cls), "--cls", str(wide),
            "--gate", str(trained.gate), "--out", str(root / "bundle"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return root / "bundle"


class ScriptedBackend:
    """Segmenter: tumour where the input is bright. Gate: tumour. Classifiers: fixed logits per
    member; records the mean of each member's input (a wider crop holds more dark background)."""

    name = "scripted"

    def __init__(self, tumour_logit: float = 8.0) -> None:
        self.mean_input: dict[str, float] = {}
        self.tumour_logit = tumour_logit  # the segmenter's logit on the tumour: its confidence

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        if role == "seg":
            return np.where(x[:, :1] > 0.5, self.tumour_logit, -8.0).astype(np.float32)
        if role == "gate":
            return np.tile(np.asarray(GATE_LOGITS, np.float32), (len(x), 1))
        self.mean_input[role] = float(x.mean())
        return np.tile(np.asarray(LOGITS[role], np.float32), (len(x), 1))


def _softmax_kept(logits: list[float]) -> np.ndarray:
    e = np.exp(np.asarray(logits, float))[[0, 1, 3]]  # notumor dropped, the rest renormalised
    return e / e.sum()


def test_ensemble_bundle_records_and_loads_its_members(ensemble: Path, trained: Trained) -> None:
    info = bundle_info(ensemble)
    assert info["format_version"] == ENSEMBLE_FORMAT_VERSION and set(info["models"]) == {
        "seg",
        "cls",
        "cls2",
        "gate",
    }
    assert info["expansion"] == info["models"]["cls"]["preprocessing"]["roi_expansion"] != WIDE
    assert info["models"]["cls2"]["preprocessing"]["roi_expansion"] == WIDE
    assert {"cls2.safetensors", "cls2.json"} <= set(info["files"])
    bundle = load_bundle(ensemble)
    assert bundle.classifier_roles == ["cls", "cls2"] and bundle.expansion == info["expansion"]
    shown = CliRunner().invoke(app, ["bundle", "info", str(ensemble)])
    assert shown.exit_code == 0 and "cls2" in shown.stdout and f"expansion={WIDE}" in shown.stdout
    assert f"mask_confidence_floor={MASK_CONFIDENCE_FLOOR}" in " ".join(shown.stdout.split())  # analysis row


def test_analysis_averages_the_members_each_on_its_own_crop(ensemble: Path, tmp_path: Path) -> None:
    bundle: Bundle = load_bundle(ensemble)
    image = (np.random.default_rng(0).random((40, 56)) * 60 + 20).astype(np.uint8)
    image[10:20, 30:44] = 250
    Image.fromarray(image).save(tmp_path / "slice.png")
    backend = ScriptedBackend()
    assert bundle.analysis["mask_confidence_floor"] == MASK_CONFIDENCE_FLOOR  # bundle create's default
    settings = replace(AnalysisSettings.for_bundle(bundle), mask_confidence_floor=None)  # members alike
    [result] = Analyzer(bundle, backend, settings).analyze_files([tmp_path / "slice.png"])  # type: ignore[arg-type]
    s = result.slices[0]
    assert result.ok and s.tumour
    expected = (_softmax_kept(LOGITS["cls"]) + _softmax_kept(LOGITS["cls2"])) / 2
    np.testing.assert_allclose(list(s.probabilities.values()), expected, atol=1e-6)
    assert s.label == ["glioma", "meningioma", "pituitary"][int(expected.argmax())]
    assert s.uncertainty.classification > 0  # the members disagree
    assert backend.mean_input["cls2"] < backend.mean_input["cls"]  # the wider crop: more background


def test_members_that_cannot_be_averaged_are_refused(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"gate.*ensemble member must be a ROI classifier"):
        create_bundle(trained.seg, [trained.cls, trained.gate], tmp_path / "a")
    other = _member(trained.cls, tmp_path / "cls-256", image_size=256)
    with pytest.raises(BundleError, match=r"cls-256.*differs .* in image_size"):
        create_bundle(trained.seg, [trained.cls, other], tmp_path / "b")
    with pytest.raises(BundleError, match="no --seg"):
        create_bundle(None, [trained.gate, trained.gate], tmp_path / "c")  # two whole-slice classifiers
    assert not any(p.name in "abc" for p in tmp_path.iterdir())


def test_a_member_without_its_primary_is_refused(ensemble: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(ensemble, tmp_path / "b"))
    info = json.loads((copy / "bundle.json").read_text())
    del info["models"]["cls"]
    (copy / "bundle.json").write_text(json.dumps(info))
    write_manifest(copy)
    with pytest.raises(BundleError, match=r"ensemble members cls2"):
        load_bundle(copy)


@pytest.mark.parametrize("tumour_logit", [8.0, 0.4])
def test_a_doubtful_mask_hands_the_crop_members_weight_to_the_whole_slice_and_the_gate(
    trained: Trained, tmp_path: Path, tumour_logit: float
) -> None:
    """cls reads the crop, cls2 the whole slice. A sure mask (P 0.9997 inside) keeps nearly the
    plain mean; a doubtful one (P 0.60 <= the floor) drops cls for cls2 and the gate's tumour classes."""
    whole = _member(trained.cls, tmp_path / "cls-whole", roi_expansion=WHOLE_IMAGE_EXPANSION)
    path = create_bundle(trained.seg, [trained.cls, whole], tmp_path / "b", gate=trained.gate)
    bundle = load_bundle(path)
    image = (np.random.default_rng(0).random((40, 56)) * 60 + 20).astype(np.uint8)
    image[10:20, 30:44] = 250
    Image.fromarray(image).save(tmp_path / "slice.png")
    settings = AnalysisSettings.for_bundle(bundle)
    analyzer = Analyzer(bundle, ScriptedBackend(tumour_logit), settings)  # type: ignore[arg-type]
    s = analyzer.analyze_files([tmp_path / "slice.png"])[0].slices[0]
    crop, whole_slice = _softmax_kept(LOGITS["cls"]), _softmax_kept(LOGITS["cls2"])
    confidence = 1 / (1 + np.exp(-tumour_logit))
    weight = max(0.0, (confidence - MASK_CONFIDENCE_FLOOR) / (1 - MASK_CONFIDENCE_FLOOR))
    gate = renormalised(np.exp(np.asarray(GATE_LOGITS))[[0, 1, 3]])
    expected = (weight * crop + whole_slice + (1 - weight) * gate) / (weight + 1 + (1 - weight))
    assert s.tumour
    np.testing.assert_allclose(list(s.probabilities.values()), expected, atol=1e-5)
    if tumour_logit < 1:
        np.testing.assert_allclose(expected, (whole_slice + gate) / 2)
