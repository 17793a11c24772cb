"""A tiny trained bundle (32 px phantoms, 1 epoch per network), its loaded service and a client.

Built once per session by the ``tiny_runs`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_helpers import Served, make_client

from braintumor.bundle.load import load_bundle


@pytest.fixture(scope="session")
def served(tiny_runs: Path) -> Served:
    path = tiny_runs / "bundle"
    return Served(path, tiny_runs / "seg" / "phantoms", load_bundle(path))


@pytest.fixture(scope="session")
def client(served: Served) -> TestClient:
    """Default settings (25 MB, no API key)."""
    return make_client(served)
