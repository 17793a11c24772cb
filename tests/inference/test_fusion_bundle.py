"""Bundles fusing the ROI classifier with a region-feature forest: create -> info -> load -> analyse,
tampered and malformed forests, and bundles without fusion left as they were."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from inference_helpers import Trained
from PIL import Image
from safetensors.numpy import load, save
from typer.testing import CliRunner

from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import Bundle, bundle_info, load_bundle
from braintumor.bundle.store import BundleError, add_to_manifest, sha256_file
from braintumor.cli import app
from braintumor.data import region_features as rf
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.results import AnalysisResult
from braintumor.training.region_forest import fit_region_forest, fold_regions, forest_probabilities

WEIGHT, TREES = 0.6, 20
CLS_LOGITS = [1.0, 0.2, 3.0, -0.5]  # glioma, meningioma, notumor (dropped), pituitary


@pytest.fixture(scope="module")
def fused(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bundle create --fuse-forest`` with the session's runs (no weighing by the mask's confidence)."""
    out = tmp_path_factory.mktemp("fused") / "bundle"
    args = ["bundle", "create", "--seg", str(trained.seg), "--cls", str(trained.cls),
            "--gate", str(trained.gate), "--fuse-forest", "--fuse-weight", str(WEIGHT),
            "--forest-trees", str(TREES), "--mask-confidence-floor", "off"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


class ScriptedBackend:
    """Segmenter: tumour where the input is bright. Gate: tumour. Classifier: fixed logits."""

    name = "scripted"

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        if role == "seg":
            return np.where(x[:, :1] > 0.5, 8.0, -8.0).astype(np.float32)
        logits = [0, 0, -5, 0] if role == "gate" else CLS_LOGITS
        return np.tile(np.asarray(logits, np.float32), (len(x), 1))


def _image() -> np.ndarray:
    """40×56 uint8 slice with a bright 10×14 'tumour' at rows 10-20, cols 30-44."""
    image = (np.random.default_rng(0).random((40, 56)) * 60 + 20).astype(np.uint8)
    image[10:20, 30:44] = 250
    return image


def _analyse(bundle: Bundle, png: Path, out: Path) -> AnalysisResult:
    """Analyse ``png`` with the classifier alone, then the bundle's forest if any (not weighed by the
    mask's confidence, which would lend the gate's classes a little weight)."""
    settings = replace(AnalysisSettings.for_bundle(bundle), mask_confidence_floor=None)
    analyzer = Analyzer(bundle, ScriptedBackend(), settings)  # type: ignore[arg-type]
    [result] = analyzer.analyze_files([png], out)
    return result


def _softmax(logits: list[float], keep: list[int]) -> np.ndarray:
    e = np.exp(np.asarray(logits, float))[keep]
    return e / e.sum()


def test_fused_bundle_records_and_verifies_the_forest(fused: Path, trained: Trained) -> None:
    info = bundle_info(fused)
    fusion = info["fusion"]
    assert (
        fusion["weight_cnn"] == WEIGHT
        and fusion["trees"] == TREES
        and fusion["features"] == list(rf.FEATURES)
    )
    assert fusion["fitted_on"] == f"{len(fold_regions(trained.cls).x_train)} slices of {trained.cls}"
    assert info["format_version"] == 3 and info["has_classifier"]
    manifest = json.loads((fused / "manifest.json").read_text())["files"]
    assert {"forest.safetensors", "forest.json"} <= set(manifest)
    assert all(manifest[f] == sha256_file(fused / f) for f in ("forest.safetensors", "forest.json"))
    bundle = load_bundle(fused)
    assert bundle.forest is not None and list(bundle.forest.classes) == bundle.classes
    assert bundle.forest.n_trees == TREES
    shown = CliRunner().invoke(app, ["bundle", "info", str(fused)])
    assert shown.exit_code == 0 and "forest 0.4" in shown.stdout and f"{TREES} trees" in shown.stdout


def test_fused_probabilities(
    fused: Path, trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = load_bundle(fused)
    assert bundle.analysis["mask_confidence_floor"] is None  # off: the classifier alone, then the forest
    image, png = _image(), tmp_path / "slice.png"
    Image.fromarray(image).save(png)
    seen: list[np.ndarray] = []
    real = rf.region_features
    monkeypatch.setattr(rf, "region_features", lambda im, m: seen.append(np.asarray(im)) or real(im, m))
    result = _analyse(bundle, png, tmp_path / "out")
    s = result.slices[0]
    assert result.ok and s.tumour and s.mask is not None and s.mask[10:20, 30:44].all()
    assert len(seen) == 1 and seen[0].dtype == np.uint8 and np.array_equal(seen[0], image)  # raw pixels
    # independently: the CNN alone, and a scikit-learn forest refitted on the same training slices
    keep = [0, 1, 3]
    cnn = _softmax(CLS_LOGITS, keep)
    regions = fold_regions(trained.cls)
    forest = fit_region_forest(regions.x_train, regions.y_train, TREES, seed=0)
    feats = real(image, s.mask)
    p = forest_probabilities(forest, np.asarray([[feats[n] for n in rf.FEATURES]]), 4)[0, keep]
    expected = WEIGHT * cnn + (1 - WEIGHT) * p / p.sum()
    assert not np.allclose(expected, cnn, atol=1e-3)  # the forest moves the probabilities
    names = ["glioma", "meningioma", "pituitary"]
    assert list(s.probabilities) == names and list(s.cnn_probabilities) == names
    np.testing.assert_allclose(list(s.probabilities.values()), expected / expected.sum(), atol=1e-6)
    np.testing.assert_allclose(list(s.cnn_probabilities.values()), cnn, atol=1e-6)
    assert s.label == names[int(expected.argmax())] == result.label
    assert result.probabilities == s.probabilities and result.cnn_probabilities == s.cnn_probabilities
    # outputs: per-input JSON and both CSVs carry the classifier's own probabilities too
    saved = json.loads((tmp_path / "out" / "slice.json").read_text())
    assert saved["cnn_probabilities"] == pytest.approx(s.cnn_probabilities, abs=1e-6)
    assert saved["slices"][0]["probabilities"] == pytest.approx(s.probabilities, abs=1e-6)
    for table in ("analysis.csv", "slices.csv"):
        row = pd.read_csv(tmp_path / "out" / table).iloc[0]
        assert row["cnn_prob_glioma"] == pytest.approx(cnn[0]) and row["prob_glioma"] == pytest.approx(
            s.probabilities["glioma"]
        )
    # the classifier's share at 1 is the classifier alone
    bundle.info["fusion"]["weight_cnn"] = 1.0
    alone = _analyse(bundle, png, tmp_path / "alone").slices[0]
    np.testing.assert_allclose(list(alone.probabilities.values()), cnn, atol=1e-6)


def test_bundles_without_fusion_are_unchanged(trained: Trained, tmp_path: Path) -> None:
    bundle = load_bundle(trained.bundle)
    assert bundle.fusion is None and bundle.forest is None and bundle.info["format_version"] == 1
    assert not any(f.startswith("forest") for f in bundle_info(trained.bundle)["files"])
    assert bundle_info(trained.bundle)["fusion"] is None
    png = tmp_path / "slice.png"
    Image.fromarray(_image()).save(png)
    result = _analyse(bundle, png, tmp_path / "out")
    s = result.slices[0]
    assert s.cnn_probabilities == {} and result.cnn_probabilities == {}
    np.testing.assert_allclose(list(s.probabilities.values()), _softmax(CLS_LOGITS, [0, 1, 3]), atol=1e-6)
    assert not [c for c in pd.read_csv(tmp_path / "out" / "slices.csv").columns if c.startswith("cnn_prob")]
    shown = CliRunner().invoke(app, ["bundle", "info", str(trained.bundle)])
    assert shown.exit_code == 0 and "the classifier alone" in shown.stdout


def test_fusion_needs_a_classifier(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"--fuse-forest.*has none; pass --cls"):
        create_bundle(trained.seg, None, tmp_path / "b", fuse_forest=True)
    with pytest.raises(BundleError, match=r"--fuse-weight 1\.5"):
        create_bundle(trained.seg, trained.cls, tmp_path / "b", fuse_forest=True, fuse_weight=1.5)
    args = ["bundle", "create", "--seg", str(trained.seg), "--fuse-forest", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "pass --cls" in result.output
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_zipped_fused_bundle_loads(trained: Trained, tmp_path: Path) -> None:
    path = create_bundle(trained.seg, trained.cls, tmp_path / "b.zip", fuse_forest=True, forest_trees=3)
    bundle = load_bundle(path)
    assert bundle.forest is not None and bundle.forest.n_trees == 3 and bundle.fusion is not None


def _copy(fused: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(fused, tmp_path / "bundle"))


def test_tampered_forest_is_refused(fused: Path, tmp_path: Path) -> None:
    path = _copy(fused, tmp_path)
    weights = path / "forest.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"forest\.safetensors: sha256 does not match"):
        load_bundle(path)


def _rewrite(path: Path, name: str, change: Any) -> None:
    """Change a bundle file and re-hash it, as a careless edit would."""
    if name.endswith(".json"):
        (path / name).write_text(json.dumps(change(json.loads((path / name).read_text()))))
    else:
        (path / name).write_bytes(save(change(dict(load((path / name).read_bytes())))))
    add_to_manifest(path, [name])


def test_malformed_forest_names_the_file(fused: Path, tmp_path: Path) -> None:
    path = _copy(fused, tmp_path)

    def out_of_range(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays["children_left"][0] = 10**6
        return arrays

    _rewrite(path, "forest.safetensors", out_of_range)
    with pytest.raises(BundleError, match=r"forest\.safetensors: a child index is out of its tree"):
        load_bundle(path)


@pytest.mark.parametrize(
    ("name", "change", "match"),
    [
        ("forest.json", lambda m: {**m, "classes": ["a", "b", "c", "d"]}, r"forest\.json: classes .* differ"),
        ("bundle.json", lambda i: {**i, "fusion": {**i["fusion"], "trees": 5}}, "fusion.trees=5"),
        ("bundle.json", lambda i: {**i, "fusion": {**i["fusion"], "weight_cnn": 2}}, "weight_cnn=2"),
        (
            "bundle.json",
            lambda i: {**i, "fusion": {**i["fusion"], "features": ["row"]}},
            "upgrade braintumor",
        ),
    ],
    ids=["classes", "trees", "weight", "features"],
)
def test_inconsistent_fusion_is_refused(
    fused: Path, tmp_path: Path, name: str, change: Any, match: str
) -> None:
    path = _copy(fused, tmp_path)
    _rewrite(path, name, change)
    with pytest.raises(BundleError, match=match):
        load_bundle(path)
