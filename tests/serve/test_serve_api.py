"""REST API: good uploads of every format, and every kind of bad input with its status."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import serve_files as files
from fastapi.testclient import TestClient
from serve_helpers import Served, decode, decode_png, make_client, upload

from braintumor.inference.results import RESEARCH_USE

# ---------------------------------------------------------------- health and model


def test_health(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["auth_required"] is False
    assert body["max_upload_mb"] == 25 and body["workers"] == 1 and body["threads_per_worker"] == 1
    assert body["model"]["name"] == "bundle"


def test_model(client: TestClient, served: Served) -> None:
    body = client.get("/api/model").json()
    assert body["classes"] == served.bundle.classes and body["version"] == "1"
    assert set(body["models"]) == {"seg", "cls", "gate"}
    assert "dice_per_patient_mean" in body["models"]["seg"]["metrics"]
    assert str(served.path.parent) not in str(body)  # no server paths


def test_page_and_docs(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    note = [line for line in page.text.splitlines() if 'class="note"' in line]
    assert len(note) == 1 and note[0].count(RESEARCH_USE) == 1 and "not stored" in note[0]
    assert page.text.count(RESEARCH_USE) == 1 and "{{" not in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "multipart/form-data" in schema["paths"]["/api/analyze"]["post"]["requestBody"]["content"]


# ---------------------------------------------------------------- good uploads


def test_report(client: TestClient, served: Served) -> None:
    body = upload(client, files.nifti(np.stack([served.array(k) for k in range(3)], axis=2)),
                  name="brain.nii.gz").json()  # fmt: skip
    assert body["report"].startswith("data:text/html;base64,")
    html = decode(body["report"]).decode("utf-8")
    assert html.startswith("<!doctype html>") and "brain.nii.gz" in html
    assert f"<dd>{body['class']}" in html and "<dd>bundle</dd>" in html and RESEARCH_USE in html
    assert "braintumor-serve-" not in html and str(served.path.parent) not in html  # no server paths
    if body["tumour"]:
        assert "data:image/png;base64," in html  # the figures are embedded
    assert upload(client, served.png().read_bytes(), name="scan.png", report="false").json()["report"] is None


def test_png_upload(client: TestClient, served: Served) -> None:
    r = upload(client, served.png().read_bytes(), name="../../etc/scan <1>.png")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"] == "scan _1_.png" and body["format"] == "png" and body["kind"] == "image"
    assert body["class"] in served.bundle.classes
    assert set(body) >= {"probabilities", "area_px", "bbox", "uncertainty", "tumour", "slice_index"}
    if body["tumour"]:
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    images = body["images"]
    assert decode_png(images["mask"]).shape == (32, 32)
    assert decode_png(images["image"]).shape == (256, 256, 3)
    assert decode_png(images["outline"]).shape == (256, 256, 4)
    assert decode_png(images["overlay"]).shape == (256, 256, 3)
    assert (images["gradcam"] is not None) == body["tumour"]
    assert len(body["slices"]) == 1 and "images" not in body["slices"][0]


def test_raw_body_and_options(client: TestClient, served: Served) -> None:
    data = served.png().read_bytes()
    r = client.post("/api/analyze?gradcam=false&images=none", content=data,
                    headers={"content-type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["input"] == "upload" and r.json()["images"] is None
    r = upload(client, data, gradcam="false")
    assert r.json()["images"]["gradcam"] is None


@pytest.mark.parametrize("kind", ["jpeg", "tiff", "dicom"])
def test_other_formats(client: TestClient, served: Served, kind: str) -> None:
    writers: dict[str, Callable[[np.ndarray], bytes]] = {
        "jpeg": files.jpeg, "tiff": files.tiff, "dicom": files.dicom,
    }  # fmt: skip
    writer = writers[kind]
    r = upload(client, writer(served.array()), name="scan")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == kind and body["kind"] == "image" and body["class"] in served.bundle.classes
    if kind == "dicom":
        assert body["spacing_mm"] == [0.5, 0.6]


@pytest.mark.parametrize("compress", [True, False])
def test_nifti_volume_per_slice(client: TestClient, served: Served, compress: bool) -> None:
    volume = np.stack([served.array(k) for k in range(3)], axis=2)
    r = upload(client, files.nifti(volume, compress), name="brain.nii.gz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "volume" and body["format"] == "nifti" and body["shape"] == [3, 32, 32]
    assert [s["index"] for s in body["slices"]] == [0, 1, 2] and 0 <= body["slice_index"] < 3
    assert body["spacing_mm"] == [0.9, 0.8, 3.0] and body["images"] is None  # rows: y, columns: x
    for s in body["slices"]:
        assert decode_png(s["images"]["mask"]).shape == (32, 32)
    nifti_image: Any = nib.Nifti1Image
    mask = nifti_image.from_bytes(gzip.decompress(decode(body["mask_nifti"])))
    assert mask.shape == (32, 32, 3) and np.allclose(mask.affine, files.AFFINE)


def test_nothing_left_on_disk(served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with make_client(served) as client:
        assert upload(client, served.png().read_bytes()).status_code == 200
        assert upload(client, served.png().read_bytes()[:70]).status_code == 422
    assert list(tmp_path.iterdir()) == []
