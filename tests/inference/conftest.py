"""Tiny trained runs and bundles, built once per test session (32 px phantoms, 1 epoch each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from inference_helpers import Trained

from braintumor.bundle.create import create_bundle
from braintumor.bundle.export import export_onnx
from braintumor.bundle.load import Bundle, load_bundle
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import TorchBackend
from braintumor.inference.pipeline import AnalysisSettings


@pytest.fixture(scope="session")
def trained(tiny_runs: Path) -> Trained:
    root = tiny_runs
    bundle = root / "bundle-onnx"
    if not bundle.exists():
        shutil.copytree(root / "bundle", bundle)
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


@pytest.fixture(scope="session")
def seg_only_bundle(trained: Trained) -> Path:
    """A segmentation-only bundle (no classifier, no gate) made from the session's seg run."""
    path = trained.root / "bundle-seg-only"
    if not path.exists():
        create_bundle(trained.seg, None, path, name="seg-only", data="phantoms")
    return path
