"""Tiny trained runs and bundles, built once per test session (32 px phantoms, 1 epoch each)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from inference_helpers import Trained

from braintumor.config import load_config
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import TorchBackend
from braintumor.inference.bundle import Bundle, load_bundle
from braintumor.inference.bundle_create import create_bundle
from braintumor.inference.export import export_onnx
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.training.runner import train_fold

QUIET = {"enable_progress_bar": False}
TINY = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
    "train.epochs=1",
]  # fmt: skip
CLS = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "model.kwargs={channels: [4, 8]}"]
RUNS = {
    "seg": ["model.name=unet", "model.kwargs={init_features: 4}"],
    "cls": ["data.roi_expansion=1.5", *CLS],
    "gate": CLS,
}


@pytest.fixture(scope="package", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread here: the CPU is shared with other jobs, and contended OpenMP threads
    spin (a DenseNet Grad-CAM took 20 s with 2 threads and 0.2 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("inference-runs")
    cache = f"data.cache_dir={root / 'cache'}"
    for name, extra in RUNS.items():
        train_fold(load_config(None, [*TINY, cache, *extra]), root / name, trainer_overrides=QUIET)
    bundle = create_bundle(root / "seg", root / "cls", root / "bundle", gate=root / "gate", data="phantoms")
    export_onnx(bundle)
    return Trained(root, root / "seg", root / "cls", root / "gate", bundle, root / "seg" / "phantoms")


@pytest.fixture(scope="session")
def bundle(trained: Trained) -> Bundle:
    return load_bundle(trained.bundle, load_onnx=True)


@pytest.fixture(scope="session")
def analyzer(bundle: Bundle) -> Analyzer:
    """fp32 torch analyzer with a small batch so that batches span several inputs."""
    return Analyzer(bundle, TorchBackend({r: m.net for r, m in bundle.models.items()}, "fp32"),
                    AnalysisSettings.for_bundle(bundle, batch_size=4))  # fmt: skip


@pytest.fixture
def bundle_copy(trained: Trained, tmp_path: Path) -> Path:
    """A writable copy of the session bundle."""
    return Path(shutil.copytree(trained.bundle, tmp_path / "bundle"))
