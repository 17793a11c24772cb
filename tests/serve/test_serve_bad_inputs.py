"""Every bad input gets a JSON error with the right status and a message that helps."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import serve_files as files
from fastapi.testclient import TestClient
from serve_helpers import Served, error_of, make_client, upload

from braintumor.inference.analyzer import Analyzer
from braintumor.serve.errors import ApiError


def test_oversize_413(served: Served) -> None:
    with make_client(served, max_upload_mb=0.01) as client:
        big = b"\x89PNG\r\n\x1a\n" + bytes(20_000)
        assert "exceeds the limit of 10000 bytes" in error_of(upload(client, big), 413)
        raw = client.post("/api/analyze", content=big, headers={"content-type": "application/octet-stream"})
        assert "exceeds the limit" in error_of(raw, 413)


def test_unknown_bytes_415(client: TestClient) -> None:
    assert "unrecognised file content" in error_of(upload(client, b"just some text", name="x.png"), 415)
    gz = upload(client, __import__("gzip").compress(b"not a volume" * 100), name="x.nii.gz")
    assert "not a NIfTI" in error_of(gz, 415)


def test_name_does_not_decide_format(client: TestClient, served: Served) -> None:
    """A PNG called .nii.gz is analysed as the PNG it is."""
    r = upload(client, served.png().read_bytes(), name="volume.nii.gz")
    assert r.status_code == 200 and r.json()["format"] == "png"


def test_truncated_png_422(client: TestClient, served: Served) -> None:
    message = error_of(upload(client, served.png().read_bytes()[:70], name="cut.png"), 422)
    assert message.startswith("cut.png: cannot decode image") and "truncated" in message


def test_truncated_nifti_422(client: TestClient, served: Served) -> None:
    data = files.nifti(np.stack([served.array(k) for k in range(3)], axis=2))
    message = error_of(upload(client, data[: len(data) // 2], name="cut.nii.gz"), 422)
    assert message.startswith("cut.nii.gz: cannot")


def test_empty_and_missing_file(client: TestClient) -> None:
    assert "empty" in error_of(upload(client, b""), 422)
    no_field = client.post("/api/analyze", files={"other": ("a.png", b"xx", "image/png")})
    assert "no 'file' field" in error_of(no_field, 400)


@pytest.mark.parametrize(
    ("case", "pattern"),
    [("zero", "image is blank"), ("nan", "1 pixels are NaN"), ("zero volume", "every slice of the volume")],
)
def test_zero_and_nan_422(client: TestClient, served: Served, case: str, pattern: str) -> None:
    image = served.array().astype(np.float32)
    if case == "zero":
        data = files.png(np.zeros((32, 32), np.uint8))
    elif case == "nan":
        image[3, 4] = np.nan
        data = files.tiff(image)
    else:
        data = files.nifti(np.zeros((16, 16, 3), np.int16))
    assert pattern in error_of(upload(client, data, name="bad"), 422)


def test_pixel_bombs_413(client: TestClient) -> None:
    assert "50000x50000 image" in error_of(upload(client, files.png_header_bomb(50_000, 50_000)), 413)
    nifti = files.nifti_header_bomb((2000, 2000, 2000))
    assert "2000×2000×2000 NIfTI volume" in error_of(upload(client, nifti), 413)
    # within the per-slice and slice-count limits, far beyond the voxel limit, behind an extension
    # longer than the head the size check reads
    nifti = files.nifti_header_bomb((4000, 4000, 1000), extension_bytes=4096)
    assert "4000×4000×1000 NIfTI volume" in error_of(upload(client, nifti), 413)


def test_pixel_limit_setting_413(served: Served) -> None:
    with make_client(served, max_pixels=500) as client:
        message = error_of(upload(client, served.png().read_bytes(), name="a.png"), 413)
        assert "1,024 pixels, more than the limit of 500" in message


def test_api_key_401(served: Served) -> None:
    data = served.png().read_bytes()
    with make_client(served, api_key="s3cret") as client:
        assert "needs an API key" in error_of(upload(client, data), 401)
        wrong = client.post("/api/analyze", files={"file": ("a.png", data)}, headers={"X-API-Key": "nope"})
        assert "wrong API key" in error_of(wrong, 401)
        assert error_of(client.get("/api/model"), 401)
        good = client.post("/api/analyze", files={"file": ("a.png", data)}, headers={"X-API-Key": "s3cret"})
        assert good.status_code == 200
        assert client.get("/api/health").json()["auth_required"] is True


def test_bad_query_422(client: TestClient, served: Served) -> None:
    r = upload(client, served.png().read_bytes(), images="sometimes")
    assert error_of(r, 422).startswith("invalid request: images")


def test_unexpected_error_500(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client(served) as client:

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(Analyzer, "analyze_scan", boom)
        message = error_of(upload(client, served.png().read_bytes()), 500)
        assert "RuntimeError" in message and "secret" not in message


def test_timeout_504(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client(served, timeout_s=0.2) as client:
        slow = Analyzer.analyze_scan

        def sleepy(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.6)
            return slow(*args, **kwargs)

        monkeypatch.setattr(Analyzer, "analyze_scan", sleepy)
        assert "longer than 0.2 s" in error_of(upload(client, served.png().read_bytes()), 504)


def test_busy_503(served: Served) -> None:
    with make_client(served, max_pending=1) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        with service.admit(), pytest.raises(ApiError) as info:
            service.admit().__enter__()
        assert info.value.status == 503
        assert service.pending == 0
