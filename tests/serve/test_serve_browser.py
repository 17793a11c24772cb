"""A real browser (headless Debian Chromium driven by Playwright, the ``browser_page`` fixture of
tests/conftest.py) against a live ``braintumor serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from live_server import live_server
from serve_helpers import Served


def test_upload_in_browser(browser_page: Any, served: Served, tmp_path: Path) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with live_server(served.path, tmp_path / "server.log", "--workers", "1") as (url, _pid):
        page.goto(url)
        page.wait_for_function("document.getElementById('model-info').textContent.includes('model')")
        page.set_input_files("#file-input", str(served.png(3)))
        page.wait_for_selector("#result:not([hidden])", timeout=60_000)
        shown = page.inner_text("#result-class").strip().lower()
        expected = {c.lower() for c in served.bundle.classes} | {"no tumour"}
        assert shown in expected, shown
        assert page.locator("#probs .bar-row").count() >= 2
        loaded = "['layer-image', 'layer-outline'].every(id => document.getElementById(id).naturalWidth > 0)"
        page.wait_for_function(loaded, timeout=10_000)
        widths = page.evaluate(
            "['layer-image', 'layer-outline'].map(id => document.getElementById(id).naturalWidth)"
        )
        assert min(widths) > 0, widths
        screenshot = tmp_path / "serve-page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot: {screenshot}")
        assert not page.is_visible("#layer-fill")
        page.check("#show-fill")
        assert page.is_visible("#layer-fill")
        assert page.get_attribute("#dl-mask", "href").startswith("data:image/png;base64,")
        assert page.get_attribute("#dl-json", "href").startswith("blob:")

        not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"hello"}
        page.set_input_files("#file-input", not_an_image)
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "415" in page.inner_text("#error") and "unrecognised file content" in page.inner_text("#error")
    assert errors == []
