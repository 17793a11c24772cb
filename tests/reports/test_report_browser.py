"""Reports open in a real browser (headless Chromium, the ``browser_page`` fixture) and every
embedded figure decodes: the reports of a trained segmentation run and a classification run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from braintumor.reports.html import write_report

IMAGES_JS = """() => Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
    inline: img.src.startsWith('data:image/png;base64,')
}))"""


@pytest.mark.parametrize("run", ["seg", "cls"])
def test_report_shows_every_figure_in_chromium(
    browser_page: Any, tiny_runs: Path, tmp_path: Path, run: str
) -> None:
    folder = Path(shutil.copytree(tiny_runs / run, tmp_path / run))
    written = write_report(folder)
    assert written["figures"] >= 2  # curves plus overlays / confusion matrix
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    page.goto(Path(written["html"]).resolve().as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate(IMAGES_JS)
    assert len(images) == written["figures"], images
    for img in images:  # embedded (self-contained), fully loaded and decoded to real pixels
        assert img["inline"] and img["complete"] and img["width"] > 50 and img["height"] > 50, img
    assert page.locator("table").count() >= 1
    assert not errors
