"""Shared fixtures: the real sample data beside the repo and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests use tiny tensors: one intra-op thread is as fast, and avoids OpenMP threads spinning against
# each other (and against subprocesses) on a 2-core runner (runs of 5 s became 60 s).
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
TINY_RUN = [
    "data.phantom_count=48", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
    "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
    "train.epochs=1",
]  # fmt: skip
TINY_CLS = ["train.task=classify", "model.name=cnn-small", "train.loss=ce", "model.kwargs={channels: [4, 8]}"]
TINY_RUNS = {
    "seg": ["model.name=unet", "model.kwargs={init_features: 4}"],
    "cls": ["data.roi_expansion=1.5", *TINY_CLS],
    "gate": TINY_CLS,
}


def shared_data_dir() -> Path:
    return Path(os.environ.get("BRAINTUMOR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; CI sets BRAINTUMOR_REQUIRE_REAL_DATA=1 so a missing folder fails."""
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("BRAINTUMOR_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"{path} is missing; the real-data tests are required here")
        pytest.skip(f"{path} not found (set BRAINTUMOR_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes caches under a temporary folder, never the user's home."""
    monkeypatch.setenv("BRAINTUMOR_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 1-epoch runs on 32 px phantoms (``seg``, ROI ``cls``, whole-slice ``gate``) and a
    ``bundle`` made from them; trained once per session, shared by the inference and serve tests."""
    from braintumor.config import load_config
    from braintumor.inference.bundle_create import create_bundle
    from braintumor.training.runner import train_fold

    root = tmp_path_factory.mktemp("tiny-runs")
    cache = f"data.cache_dir={root / 'cache'}"
    for name, extra in TINY_RUNS.items():
        cfg = load_config(None, [*TINY_RUN, cache, *extra])
        train_fold(cfg, root / name, trainer_overrides={"enable_progress_bar": False})
    create_bundle(root / "seg", root / "cls", root / "bundle", gate=root / "gate", data="phantoms")
    return root
