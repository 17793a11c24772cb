"""Inputs unlike a bundle's training slices: the service still answers 200, with a warning that the
page shows."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import live_server
from PIL import Image
from serve_helpers import Served, make_client, upload

from braintumor.bundle.input_check import InputProfile, add_profile, profile_dataset


@pytest.fixture(scope="module")
def profile(served: Served) -> InputProfile:
    return profile_dataset(served.phantoms, "phantoms")


def _noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (96, 96), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_api_answers_200_with_the_warning(served: Served, profile: InputProfile) -> None:
    checked = Served(served.path, served.phantoms, dataclasses.replace(served.bundle, input_profile=profile))
    client = make_client(checked)
    noisy = upload(client, _noise_png(), "noise.png")
    assert noisy.status_code == 200, noisy.text
    assert "does not look like the phantoms slices" in noisy.json()["warning"]
    plain = upload(client, served.png(2).read_bytes(), "slice.png")
    assert plain.status_code == 200 and plain.json()["warning"] == ""


def test_page_shows_the_warning(
    browser_page: Any, served: Served, profile: InputProfile, tmp_path: Path
) -> None:
    bundle = Path(shutil.copytree(served.path, tmp_path / "bundle"))
    add_profile(bundle, profile)
    page = browser_page
    with live_server(bundle, tmp_path / "server.log", "--workers", "1") as (url, _pid):
        page.goto(url)
        page.wait_for_function("document.getElementById('model-info').textContent.includes('model')")
        page.set_input_files(
            "#file-input", {"name": "noise.png", "mimeType": "image/png", "buffer": _noise_png()}
        )
        page.wait_for_selector("#input-warning:not([hidden])", timeout=60_000)
        assert "does not look like the phantoms slices" in page.inner_text("#input-warning")
        page.set_input_files("#file-input", str(served.png(2)))
        page.wait_for_selector("#input-warning", state="hidden", timeout=60_000)
