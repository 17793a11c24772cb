"""Test helpers: the trained-bundle record, a client factory and response checks."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from braintumor.bundle.load import Bundle
from braintumor.serve import ServeSettings, create_app
from braintumor.serve.service import AnalysisService


@dataclass(frozen=True)
class Served:
    """The bundle folder, its phantom slices and its loaded form."""

    path: Path
    phantoms: Path
    bundle: Bundle

    def png(self, k: int = 0) -> Path:
        return sorted((self.phantoms / "images").glob("*.png"))[k]

    def array(self, k: int = 0) -> np.ndarray:
        return np.asarray(Image.open(self.png(k)))


def make_client(served: Served, **settings: object) -> TestClient:
    """A client of an app with these settings, reusing the session's loaded bundle."""
    config = ServeSettings(bundle=served.path, workers=1, threads=1, **settings)  # type: ignore[arg-type]
    service = AnalysisService(config, bundle=served.bundle)
    return TestClient(create_app(config, service), raise_server_exceptions=False)


def decode(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header.endswith(";base64")
    return base64.b64decode(payload)


def decode_png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(decode(url))))


def upload(client: TestClient, data: bytes, name: str = "scan.bin", **params: Any) -> Any:
    form = {"file": (name, data, "application/octet-stream")}
    return client.post("/api/analyze", params=params, files=form)


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert "braintumor-serve-" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])
