"""The page in a real browser (headless Chromium, the ``browser_page`` fixture of tests/conftest.py):
several files in one go (queue, results table, CSV), and a zip of a DICOM series (slice slider,
volume figures, mask NIfTI and DICOM SEG downloads)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serve_files as files
from live_server import live_server
from PIL import Image
from serve_helpers import Served

READY = "() => document.getElementById('model-info').textContent.includes('model')"


@pytest.fixture(scope="module")
def server_url(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("page-batch") / "server.log"
    with live_server(served.path, log, "--workers", "1") as (url, _pid):
        yield url


def _open(page: Any, url: str) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function(READY)
    return errors


def test_two_files_queue_table_and_csv(
    browser_page: Any, served: Served, server_url: str, tmp_path: Path
) -> None:
    page = browser_page
    errors = _open(page, server_url)
    uploads = [
        {"name": name, "mimeType": "image/png", "buffer": served.png(k).read_bytes()}
        for k, name in enumerate(["=sum(A1).png", "second.png"])
    ]
    page.set_input_files("#file-input", uploads)
    page.wait_for_selector("#queue-box:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#queue [data-status=done]').length === 2",
                           timeout=60_000)  # fmt: skip
    assert page.locator("#results-body tr[data-status=done]").count() == 2
    assert page.inner_text("#status").startswith("Finished: 2 analysed")
    assert page.is_visible("#result") and page.get_attribute("#status", "aria-live") == "polite"
    shown = page.inner_text("#results-body tr:nth-child(1) td:nth-child(1)")
    assert shown == "=sum(A1).png"
    page.click("#results-body tr:nth-child(2) button")  # shows that row's result
    assert page.get_attribute("#results-body tr:nth-child(2)", "aria-current") == "true"
    with page.expect_download() as download:
        page.click("#dl-csv")
    rows = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert [r["file"] for r in rows] == ["'=sum(A1).png", "second.png"]  # a formula-looking cell is quoted
    assert all(r["ok"] == "true" and r["kind"] == "image" for r in rows)
    assert {r["class"] for r in rows} <= {*served.bundle.classes}
    page.screenshot(path=str(tmp_path / "serve-page-batch.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'serve-page-batch.png'}")
    assert errors == []


def _tumour_series(served: Served, count: int = 3) -> bytes:
    masks = sorted((served.phantoms / "masks").glob("*.png"))
    picks = [k for k, m in enumerate(masks) if np.asarray(Image.open(m)).any()][:count]
    series = files.dicom_series([served.array(k) for k in picks])
    return files.zipped({f"patient/IM{k:04d}": data for k, data in enumerate(series)})


def test_dicom_zip_slider_and_downloads(
    browser_page: Any, served: Served, server_url: str, tmp_path: Path
) -> None:
    page = browser_page
    errors = _open(page, server_url)
    upload = {"name": "study.zip", "mimeType": "application/zip", "buffer": _tumour_series(served)}
    page.set_input_files("#file-input", upload)
    page.wait_for_selector("#slice-row:not([hidden])", timeout=60_000)
    assert page.locator("#results-body tr[data-status=done]").count() == 1
    assert page.inner_text("#results-body tr td:first-child") == "study.zip/patient"
    metrics = page.inner_text("#metrics")
    assert "Tumour volume" in metrics and "mm³" in metrics, metrics
    assert "Slices with tumour" in metrics and "of 3" in metrics and "Majority class" in metrics

    slider = page.locator("#slice")
    slider.focus()
    page.keyboard.press("Home")
    first = page.get_attribute("#layer-image", "src")
    assert page.inner_text("#slice-label") == "1 / 3"
    page.keyboard.press("End")
    assert page.inner_text("#slice-label") == "3 / 3"
    assert page.get_attribute("#layer-image", "src") != first
    assert "slice 3 of 3" in slider.get_attribute("aria-valuetext")

    assert page.get_attribute("#dl-nifti", "href").startswith("data:application/gzip;base64,")
    assert page.get_attribute("#dl-nifti", "download") == "patient_mask.nii.gz"
    if not page.is_visible("#dl-seg"):
        pytest.fail(f"no DICOM SEG link; the tiny model found: {page.inner_text('#result-class')}")
    assert page.get_attribute("#dl-seg", "href").startswith("data:application/dicom;base64,")
    assert page.get_attribute("#dl-seg", "download") == "patient_seg.dcm"
    assert page.is_visible("#dl-report") and page.inner_text("#dl-report") == "Report (HTML)"
    assert page.get_attribute("#dl-report", "href").startswith("data:text/html;base64,")
    assert page.get_attribute("#dl-report", "download") == "patient_report.html"
    page.screenshot(path=str(tmp_path / "serve-page-zip.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'serve-page-zip.png'}")
    assert errors == []
