"""ROI classifiers with position channels (``data.roi_coords``): training metadata, bundles and
analysis, and classifiers whose metadata predates the option."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import Trained
from typer.testing import CliRunner

from braintumor.bundle.checks import read_card
from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import Bundle, load_bundle
from braintumor.bundle.store import BundleError
from braintumor.cli import app
from braintumor.config import load_config
from braintumor.data.preprocess import normalize_images, to_channels_first
from braintumor.data.roi import crop_roi
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import TorchBackend
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.models.weights import read_card as weights_card
from braintumor.training.runner import train_fold

TINY = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
    "train.epochs=1", "train.task=classify", "model.name=cnn-small", "train.loss=ce",
    "model.kwargs={channels: [4, 8]}", "data.roi_expansion=1.5", "data.roi_coords=true",
]  # fmt: skip


@pytest.fixture(scope="module")
def coords_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch ROI classifier with position channels on 32 px grey phantoms."""
    run = tmp_path_factory.mktemp("roi-coords") / "cls"
    train_fold(load_config(None, TINY), run, trainer_overrides={"enable_progress_bar": False})
    return run


@pytest.fixture(scope="module")
def coords_bundle(trained: Trained, coords_run: Path) -> Path:
    """``bundle create`` with the session's segmenter and gate and the coords classifier."""
    out = coords_run.parent / "bundle"
    args = [
        "bundle",
        "create",
        "--seg",
        str(trained.seg),
        "--cls",
        str(coords_run),
        "--gate",
        str(trained.gate),
    ]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


def test_training_records_roi_coords(coords_run: Path) -> None:
    card = weights_card(coords_run / "checkpoints" / "best.safetensors")
    prep = card.preprocessing
    assert prep.roi_coords is True and prep.roi_expansion == 1.5
    assert prep.channels == 1 and card.in_channels == 3  # grey image + row + column
    cfg = load_config(coords_run / "config.yaml")
    assert cfg.data.roi_coords and cfg.data.channels == 1 and cfg.model.in_channels == 3


def test_bundle_analyses_with_coords(coords_bundle: Path, trained: Trained, tmp_path: Path) -> None:
    bundle = load_bundle(coords_bundle)
    cls = bundle.models["cls"]
    assert cls.prep.roi_coords and (cls.in_channels, cls.image_channels) == (3, 1)
    runner = CliRunner()
    assert runner.invoke(app, ["export", str(coords_bundle), "--format", "onnx", "--json"]).exit_code == 0
    images = [str(p) for p in trained.images(2)]
    for backend in ("torch", "onnx"):
        args = ["analyze", *images, "--bundle", str(coords_bundle), "--backend", backend, "--gradcam"]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / backend), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["n_ok"] == 2 and report["n_failed"] == 0


class RecordingBackend:
    """Segmenter: tumour where the input is bright; gate: tumour; classifier: the real network."""

    name = "recording"

    def __init__(self, bundle: Bundle) -> None:
        self.torch = TorchBackend({"cls": bundle.models["cls"].net}, "fp32")
        self.inputs: dict[str, list[np.ndarray]] = {}

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        self.inputs.setdefault(role, []).append(x.copy())
        if role == "seg":
            return np.where(x[:, :1] > 0.5, 8.0, -8.0).astype(np.float32)
        if role == "gate":
            return np.tile(np.asarray([0, 0, -5, 0], np.float32), (len(x), 1))
        return self.torch.run(role, x)


def test_classifier_gets_the_training_crop_with_coords(coords_bundle: Path) -> None:
    bundle = load_bundle(coords_bundle)
    image = (np.random.default_rng(0).random((40, 56)) * 40).astype(np.uint8)
    image[10:20, 30:44] = 250
    backend = RecordingBackend(bundle)
    settings = AnalysisSettings.for_bundle(bundle, tta_flips=("none",))
    result = Analyzer(bundle, backend, settings).analyze(image, gradcam=True)  # type: ignore[arg-type]
    mask = result.slices[0].mask
    assert result.ok and result.tumour and mask is not None
    assert result.slices[0].heatmap is not None and result.slices[0].heatmap.shape == (40, 56)
    prep = bundle.models["cls"].prep
    native = normalize_images([to_channels_first(image, prep.channels)], prep.normalization,
                              prep.percentiles)[0]  # fmt: skip
    expected, _ = crop_roi(native, mask, bundle.expansion, prep.image_size, coords=True)
    got = backend.inputs["cls"][0][0]
    assert got.shape == (3, 32, 32) and np.array_equal(got, expected)


def test_metadata_without_roi_coords_still_loads(trained: Trained, tmp_path: Path) -> None:
    old = Path(shutil.copytree(trained.cls, tmp_path / "old-cls"))
    meta_path = old / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    del meta["preprocessing"]["roi_coords"]  # written before the option existed
    meta_path.write_text(json.dumps(meta))
    create_bundle(trained.seg, old, tmp_path / "bundle", gate=trained.gate, data="phantoms")
    bundle = load_bundle(tmp_path / "bundle")
    cls = bundle.models["cls"]
    assert not cls.prep.roi_coords and cls.in_channels == cls.image_channels == 1
    analyzer = Analyzer(bundle, TorchBackend({r: m.net for r, m in bundle.models.items()}, "fp32"),
                        AnalysisSettings.for_bundle(bundle))  # fmt: skip
    assert analyzer.analyze(trained.images(1)[0]).ok


def test_roi_coords_records_are_checked() -> None:
    prep = {"image_size": 32, "channels": 1, "normalization": "none", "percentiles": [1, 99]}
    record = {"task": "classify", "model": {"name": "cnn-small"}, "in_channels": 3, "classes": ["a", "b"]}

    def card_with(**fields: object) -> object:
        return read_card({**record, "preprocessing": {**prep, **fields}}, "cls.json")

    card = card_with(roi_expansion=1.5, roi_coords=True)
    assert card.image_channels == 1 and card.preprocessing.coord_channels == 2  # type: ignore[attr-defined]
    with pytest.raises(BundleError, match=r"cls\.json.*roi_coords"):
        card_with(roi_expansion=None, roi_coords=True)
    with pytest.raises(BundleError, match="roi_coords"):
        card_with(roi_expansion=1.5, roi_coords="yes")
