"""Classify-only bundles (a whole-slice classifier, no segmenter): create, refuse, verify, analyse
(the same numbers as the run's own prediction and evaluation), outputs without masks, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from inference_helpers import Trained, write_nifti
from PIL import Image
from typer.testing import CliRunner

from braintumor.bundle.create import create_bundle, from_run
from braintumor.bundle.load import CLASSIFY_ONLY_FORMAT_VERSION, FORMAT_VERSION, bundle_info, load_bundle
from braintumor.bundle.store import BundleError, write_manifest
from braintumor.cli import app
from braintumor.data.phantom import CLASSES
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import TorchBackend
from braintumor.inference.outputs import caption
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.predict import Predictor
from braintumor.inference.results import SliceResult
from braintumor.run_dir import RunDir

runner = CliRunner()


@pytest.fixture(scope="module")
def classify_only(trained: Trained) -> Path:
    """The session's whole-slice 4-class phantom run (the full bundle's gate) bundled alone."""
    path = trained.root / "bundle-classify-only"
    if not path.exists():
        create_bundle(None, trained.gate, path, name="slices", data="phantoms")
    return path


def _analyzer(path: Path, **settings: Any) -> Analyzer:
    bundle = load_bundle(path)
    backend = TorchBackend({r: m.net for r, m in bundle.models.items()}, "fp32")
    return Analyzer(bundle, backend, AnalysisSettings.for_bundle(bundle, batch_size=4, **settings))


def _json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- create, verify, refuse


def test_round_trip(classify_only: Path) -> None:
    info = bundle_info(classify_only)
    assert info["verified"] and info["format_version"] == CLASSIFY_ONLY_FORMAT_VERSION
    assert info["has_classifier"] is True and info["has_segmenter"] is False
    assert info["classes"] == CLASSES and info["expansion"] is None and set(info["models"]) == {"cls"}
    assert set(info["files"]) == {"bundle.json", "cls.json", "cls.safetensors"}
    assert info["no_tumour_class"] == "notumor"
    bundle = load_bundle(classify_only)
    assert bundle.classifies_whole_slices and not bundle.has_segmenter and bundle.gate is None
    assert bundle.whole_slice_roles == ["cls"] and bundle.expansion is None


def test_full_bundle_is_unchanged(trained: Trained) -> None:
    bundle = load_bundle(trained.bundle)
    assert bundle.has_segmenter and not bundle.classifies_whole_slices
    assert bundle.whole_slice_roles == ["gate"] and bundle.info["format_version"] == 1


@pytest.mark.parametrize(
    ("roles", "options", "message"),
    [
        ({"cls": "cls"}, {}, r"is a ROI classifier .*needs --seg RUN"),
        (
            {"cls": "gate", "gate": "gate"},
            {},
            r"--gate vetoes a segmenter's tumours and this bundle has no --seg",
        ),
        ({"cls": "gate"}, {"fuse_forest": True}, r"--fuse-forest .*has no --seg"),
        ({}, {}, r"no model to bundle: pass --seg RUN .* or --cls RUN alone"),
        ({"gate": "gate"}, {}, r"no model to bundle"),
        ({"cls": "seg"}, {}, r"--cls must be a classifier, got task='segment'"),
    ],
)
def test_refusals(
    trained: Trained, tmp_path: Path, roles: dict[str, str], options: dict[str, Any], message: str
) -> None:
    runs = {role: getattr(trained, run) for role, run in roles.items()}
    with pytest.raises(BundleError, match=message):
        create_bundle(None, runs.get("cls"), tmp_path / "b", gate=runs.get("gate"), **options)
    assert not (tmp_path / "b").exists()


def test_whole_slice_classifier_beside_a_segmenter_is_still_refused(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"whole-slice classifier .*leave out --seg"):
        create_bundle(trained.seg, trained.gate, tmp_path / "b")


def test_edited_manifests_are_refused(classify_only: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(classify_only, tmp_path / "b"))
    info_path = copy / "bundle.json"
    info = json.loads(info_path.read_text())
    for edit, message in (
        ({"expansion": 1.5}, "without segmenter must record expansion null"),
        ({"classes": []}, "'classes' must list the classifier's class names"),
        ({"models": {"gate": info["models"]["cls"]}}, "or 'cls' alone"),
        ({"format_version": FORMAT_VERSION + 1}, "upgrade braintumor"),
    ):
        info_path.write_text(json.dumps({**info, **edit}))
        write_manifest(copy)
        with pytest.raises(BundleError, match=message):
            load_bundle(copy)


# ---------------------------------------------------------------- the same numbers as the run


def test_analyze_equals_the_runs_own_prediction(classify_only: Path, trained: Trained) -> None:
    """The bundle's answer is the run's `braintumor predict` answer: same input, same forward pass."""
    images = trained.images(8)
    results = _analyzer(classify_only).analyze_files(images)
    predictor = Predictor(trained.gate / "checkpoints" / "best.safetensors", precision="32-true")
    assert predictor.card.preprocessing.roi_expansion is None
    for path, result in zip(images, results, strict=True):
        own = predictor.predict_file(path)
        assert result.ok and own.ok
        assert result.label == own.label and list(result.probabilities) == CLASSES
        assert result.probabilities == pytest.approx(own.probabilities, abs=1e-5)
        assert result.tumour == (result.label != "notumor")
        assert result.area_px is None if result.tumour else result.area_px == 0
        assert result.bbox is None and result.slices[0].mask is None
        assert result.uncertainty.to_dict() == {"segmentation": None, "classification": None}  # one view


def test_analyze_agrees_with_the_runs_evaluation(classify_only: Path, trained: Trained) -> None:
    """The run's test predictions (predictions.csv, from its float16 cache) on the same files."""
    predictions = pd.read_csv(RunDir(trained.gate).predictions)
    images = RunDir(trained.gate).phantoms / "images"
    rows = predictions[[(images / f"{sid}.png").is_file() for sid in predictions["sample_id"]]].head(8)
    assert len(rows) >= 4
    results = _analyzer(classify_only).analyze_files([images / f"{sid}.png" for sid in rows["sample_id"]])
    for (_, row), result in zip(rows.iterrows(), results, strict=True):
        expected = {c: float(row[f"prob_{c}"]) for c in CLASSES}
        assert result.probabilities == pytest.approx(expected, abs=2e-3)
        if sorted(expected.values())[-1] - sorted(expected.values())[-2] > 5e-3:
            assert result.label == CLASSES[int(row["pred"])]


def test_from_run_is_the_bundle(classify_only: Path, trained: Trained) -> None:
    memory = from_run(None, trained.gate)
    assert memory.classifies_whole_slices and memory.info["analysis"] == load_bundle(classify_only).analysis


# ---------------------------------------------------------------- outputs without masks


def test_outputs_volume_majority_and_gradcam(classify_only: Path, trained: Trained, tmp_path: Path) -> None:
    arrays = [np.asarray(Image.open(p)) for p in trained.images(6)]
    volume = np.stack([*arrays, np.zeros_like(arrays[0])], axis=2)  # the last slice is blank
    nifti = write_nifti(tmp_path / "scan.nii.gz", volume)
    analyzer = _analyzer(classify_only)
    image_path = trained.images(1)[0]
    out = tmp_path / "out"
    image, result = analyzer.analyze_files([image_path, nifti], out, gradcam=True)
    assert image.ok and "mask" not in image.outputs and Path(image.outputs["overlay"]).is_file()
    assert not list(out.glob("*_mask*")) and "mask_nifti" not in result.outputs
    assert result.ok and result.kind == "volume" and len(result.slices) == 7
    assert result.slices[6].skipped == "blank slice" and result.slices[6].label == "notumor"
    labels = [s.label for s in result.slices[:6]]
    assert [s.tumour for s in result.slices[:6]] == [label != "notumor" for label in labels]
    hits = [s.label for s in result.slices if s.tumour]
    if hits:
        assert result.tumour and result.label == result.majority_label
        assert hits.count(result.label) == max(hits.count(c) for c in set(hits))
        assert result.area_px is None and result.volume_mm3 is None
        for s in result.slices:
            assert (s.heatmap is not None) == s.tumour
            if s.heatmap is not None:
                assert s.heatmap.shape == (32, 32) and 0 <= s.heatmap.min() <= s.heatmap.max() <= 1
    else:
        assert result.label == "notumor" and set(result.probabilities) == set(CLASSES)
    slices = pd.read_csv(out / "slices.csv")
    assert len(slices) == 8 and {f"prob_{c}" for c in CLASSES} <= set(slices.columns)
    saved = json.loads(Path(result.outputs["json"]).read_text())
    assert saved["class"] == result.label and len(saved["slices"]) == 7


def test_dicom_seg_gives_a_note(classify_only: Path, trained: Trained, tmp_path: Path) -> None:
    (result,) = _analyzer(classify_only).analyze_files(trained.images(1), tmp_path / "o", dicom_seg=True)
    assert result.ok and "dicom_seg" not in result.outputs
    assert any("classifies whole slices and makes no tumour mask" in note for note in result.notes)


def test_caption_without_a_mask() -> None:
    hit = SliceResult(0, tumour=True, label="glioma", probabilities={"glioma": 0.8}, area_px=None)
    assert caption(hit) == "glioma 0.80"


# ---------------------------------------------------------------- CLI


def test_cli_create_info_and_analyze(trained: Trained, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    created = _json(["bundle", "create", "--cls", str(trained.gate), "--out", str(bundle), "--json"])
    assert created["has_segmenter"] is False and created["classes"] == CLASSES
    shown = runner.invoke(app, ["bundle", "info", str(bundle)])
    assert shown.exit_code == 0 and "classify-only" in shown.output
    refused = runner.invoke(
        app, ["bundle", "create", "--cls", str(trained.cls), "--out", str(tmp_path / "r")]
    )
    assert refused.exit_code != 0 and "needs --seg RUN" in refused.output
    refused = runner.invoke(app, ["bundle", "create", "--out", str(tmp_path / "r")])
    assert refused.exit_code != 0 and "no model to bundle" in refused.output
    images = [str(p) for p in trained.images(3)]
    report = _json(["analyze", *images, "--bundle", str(bundle), "--out", str(tmp_path / "a"),
                    "--backend", "torch", "--precision", "fp32", "--report", "--json"])  # fmt: skip
    assert report["n_ok"] == 3
    predictor = Predictor(trained.gate / "checkpoints" / "best.safetensors", precision="32-true")
    for path, entry in zip(images, report["results"], strict=True):
        own = predictor.predict_file(path)
        assert entry["class"] == own.label
        assert entry["probabilities"] == pytest.approx(own.probabilities, abs=1e-5)
        assert "mask" not in entry["outputs"] and Path(entry["outputs"]["report"]).is_file()
    human = runner.invoke(app, ["analyze", images[0], "--bundle", str(bundle), "--out", str(tmp_path / "h"),
                                "--backend", "torch"])  # fmt: skip
    assert human.exit_code == 0 and "analysed" in human.output


# ---------------------------------------------------------------- tumour-free slices and volumes


class MeanClassifier:
    """Scripted whole-slice classifier: notumor / glioma / meningioma by the slice's mean intensity
    (flips keep it, so every flip agrees)."""

    name = "scripted"

    def __init__(self) -> None:
        self.roles: list[str] = []

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        self.roles.append(role)
        mean = x.mean(axis=(1, 2, 3))
        picked = np.where(mean < 0.3, CLASSES.index("notumor"), CLASSES.index("glioma"))
        picked = np.where(mean > 0.7, CLASSES.index("meningioma"), picked)
        return (4.0 * np.eye(len(CLASSES), dtype=np.float32)[picked]).astype(np.float32)


def _slice(bright_fraction: float) -> np.ndarray:
    """40×40 uint8: the first ``bright_fraction`` of the rows bright, the rest dark, light noise."""
    image = (np.random.default_rng(1).random((40, 40)) * 10).astype(np.uint8)
    image[: int(40 * bright_fraction)] += 200
    return image


def test_tumour_free_slices_and_the_volume_majority(classify_only: Path, tmp_path: Path) -> None:
    bundle = load_bundle(classify_only)
    backend = MeanClassifier()
    analyzer = Analyzer(bundle, backend, AnalysisSettings.for_bundle(bundle))  # type: ignore[arg-type]
    clear = analyzer.analyze(_slice(0.1), spacing=(0.5, 0.5))
    assert clear.ok and clear.tumour is False and clear.label == "notumor" and clear.area_px == 0
    assert clear.area_mm2 == 0.0 and clear.probabilities["notumor"] > 0.9 and set(backend.roles) == {"cls"}
    hit = analyzer.analyze(_slice(0.5))
    assert hit.tumour and hit.label == "glioma" and hit.area_px is None and hit.tumour_slices == [0]
    fractions = [0.1, 0.5, 0.5, 0.9, 0.1]
    volume = np.stack([*map(_slice, fractions), np.zeros((40, 40), np.uint8)], axis=2)
    (result,) = analyzer.analyze_files([write_nifti(tmp_path / "v.nii.gz", volume)])
    assert [s.label for s in result.slices] == [
        "notumor",
        "glioma",
        "glioma",
        "meningioma",
        "notumor",
        "notumor",
    ]
    assert result.tumour_slices == [1, 2, 3] and result.label == result.majority_label == "glioma"
    assert result.area_px is None and result.volume_mm3 is None and result.slices[5].skipped
    assert set(result.probabilities) == set(CLASSES)
    clear_volume = np.stack([_slice(0.1), _slice(0.1)], axis=2)
    (free,) = analyzer.analyze_files([write_nifti(tmp_path / "f.nii.gz", clear_volume)])
    assert free.tumour is False and free.label == free.majority_label == "notumor"
    assert free.probabilities["notumor"] > 0.9 and free.area_px == 0


def test_a_bundle_from_a_cv_fold_records_and_shows_the_cv_figures(trained: Trained, tmp_path: Path) -> None:
    from braintumor.training.cv import aggregate

    cv = RunDir(tmp_path / "cv")
    shutil.copytree(trained.gate, cv.fold(0).path)
    metrics = json.loads(cv.fold(0).metrics.read_text())
    other = {**metrics, "accuracy": metrics["accuracy"] / 2}
    cv.cv_metrics.write_text(json.dumps(aggregate([metrics, other], "classify")))
    record = bundle_info(create_bundle(None, cv.fold(0).path, tmp_path / "b"))["models"]["cls"]["cv_metrics"]
    assert record["n_folds"] == 2 and record["source"] == str(cv.path)
    assert record["mean"]["accuracy"] == pytest.approx(0.75 * metrics["accuracy"])
    assert record["std"]["accuracy"] == pytest.approx(0.25 * metrics["accuracy"])
    shown = runner.invoke(app, ["bundle", "info", str(tmp_path / "b")])
    assert shown.exit_code == 0 and "cls CV" in shown.output and "(2 folds" in shown.output
    plain = bundle_info(create_bundle(None, trained.gate, tmp_path / "p"))["models"]["cls"]
    assert "cv_metrics" not in plain
    cv.cv_metrics.write_text(json.dumps(aggregate([metrics], "classify")))  # one fold: no spread
    single = bundle_info(create_bundle(None, cv.fold(0).path, tmp_path / "s"))["models"]["cls"]
    assert "cv_metrics" not in single
