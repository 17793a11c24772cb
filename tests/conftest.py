"""Shared fixtures: the real sample data beside the repo, small synthetic runs, and a browser.

The browser is headless Debian Chromium driven by Playwright; its tests skip when
``/usr/bin/chromium`` (``apt-get install -y chromium``) or Playwright is missing, unless
``BRAINTUMOR_REQUIRE_BROWSER=1``: then they fail. Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    from braintumor.bundle.create import create_bundle
    from braintumor.config import load_config
    from braintumor.training.runner import train_fold

    root = tmp_path_factory.mktemp("tiny-runs")
    cache = f"data.cache_dir={root / 'cache'}"
    for name, extra in TINY_RUNS.items():
        cfg = load_config(None, [*TINY_RUN, cache, *extra])
        train_fold(cfg, root / name, trainer_overrides={"enable_progress_bar": False})
    create_bundle(root / "seg", root / "cls", root / "bundle", gate=root / "gate", data="phantoms")
    return root


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _unavailable(reason: str) -> None:
    if os.environ.get("BRAINTUMOR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; BRAINTUMOR_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A Playwright page in a fresh Chromium profile (a temporary user-data-dir)."""
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found; install it with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="braintumor-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 860},
        )  # fmt: skip
        try:
            yield context.new_page()
        finally:
            context.close()
