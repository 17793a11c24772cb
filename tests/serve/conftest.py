"""A tiny trained bundle (32 px phantoms, 1 epoch per network), its loaded service and a client.

Built once per session, as in ``tests/inference/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from serve_helpers import Served, make_client

from braintumor.config import load_config
from braintumor.inference.bundle import load_bundle
from braintumor.inference.bundle_create import create_bundle
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
    """One intra-op thread: the CPU is shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("serve-runs")
    cache = f"data.cache_dir={root / 'cache'}"
    for name, extra in RUNS.items():
        train_fold(load_config(None, [*TINY, cache, *extra]), root / name, trainer_overrides=QUIET)
    path = create_bundle(root / "seg", root / "cls", root / "bundle", gate=root / "gate", data="phantoms")
    return Served(Path(path), root / "seg" / "phantoms", load_bundle(path))


@pytest.fixture(scope="session")
def client(served: Served) -> TestClient:
    """Default settings (25 MB, no API key)."""
    return make_client(served)
