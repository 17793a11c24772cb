"""The service with a classify-only bundle (a whole-slice classifier, no segmenter): labels and
probabilities over all classes, no mask layers, no mask NIfTI, no DICOM SEG (a note says why)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import serve_files as files
from fastapi.testclient import TestClient
from serve_helpers import Served, decode_png, make_client, upload

from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import load_bundle
from braintumor.data.phantom import CLASSES
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import make_backend


@pytest.fixture(scope="module")
def classify_only(tiny_runs: Path) -> Served:
    path = tiny_runs / "serve-classify-only"
    if not path.exists():
        create_bundle(None, tiny_runs / "gate", path, name="slices")
    return Served(path, tiny_runs / "seg" / "phantoms", load_bundle(path))


@pytest.fixture(scope="module")
def slices_client(classify_only: Served) -> TestClient:
    return make_client(classify_only)


def test_model_and_page(slices_client: TestClient) -> None:
    body = slices_client.get("/api/model").json()
    assert body["has_segmenter"] is False and body["has_classifier"] is True
    assert set(body["models"]) == {"cls"} and body["classes"] == CLASSES and body["expansion"] is None
    assert slices_client.get("/").status_code == 200


def test_png_answers_labels_and_probabilities_without_a_mask(
    slices_client: TestClient, classify_only: Served
) -> None:
    r = upload(slices_client, classify_only.png().read_bytes(), name="scan.png")
    assert r.status_code == 200, r.text
    body = r.json()
    bundle = classify_only.bundle
    own = Analyzer(bundle, make_backend(bundle, "torch")).analyze(classify_only.png())
    assert list(body["probabilities"]) == CLASSES  # the server's backend may be OpenVINO / bf16
    assert body["probabilities"] == pytest.approx(own.probabilities, abs=5e-3)
    assert body["class"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["tumour"] == (body["class"] != "notumor") and body["bbox"] is None
    assert body["mask_nifti"] is None and body["dicom_seg"] is None
    images = body["images"]
    assert images["mask"] is None and images["outline"] is None and images["fill"] is None
    assert decode_png(images["image"]).shape == (256, 256, 3)
    assert decode_png(images["overlay"]).shape == (256, 256, 3)
    assert (images["gradcam"] is not None) == body["tumour"]
    assert body["report"].startswith("data:text/html;base64,")


def test_volume_and_dicom(slices_client: TestClient, classify_only: Served) -> None:
    volume = np.stack([classify_only.array(k) for k in range(3)], axis=2)
    body = upload(slices_client, files.nifti(volume, True), name="brain.nii.gz").json()
    assert body["kind"] == "volume" and body["mask_nifti"] is None and len(body["slices"]) == 3
    assert body["class"] in CLASSES and all(s["class"] in CLASSES for s in body["slices"])
    for s in body["slices"]:
        assert s["images"]["mask"] is None and s["images"]["image"] is not None
    r = upload(slices_client, files.dicom(classify_only.array()), name="scan")
    assert r.status_code == 200, r.text
    dicom = r.json()
    assert dicom["dicom_seg"] is None and any("makes no tumour mask" in n for n in dicom["notes"])
