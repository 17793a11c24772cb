"""Shared fixtures: the real sample data beside the repo and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[1]


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
