"""Pure parts of the server: sniffing, labels, the worker plan, streaming limits."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serve_files as files
from serve_helpers import Served, make_client, upload

from braintumor.errors import ConfigError
from braintumor.serve.errors import ApiError
from braintumor.serve.settings import ServeSettings
from braintumor.serve.sniff import sniff
from braintumor.serve.upload import display_label, read_upload


def test_sniff_magic_bytes() -> None:
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    volume = np.zeros((4, 4, 2), np.int16)
    assert sniff(files.png(image)).name == "png"
    assert sniff(files.jpeg(image)).name == "jpeg"
    assert sniff(files.tiff(image)).name == "tiff"
    assert sniff(files.dicom(image)).name == "dicom"
    assert sniff(files.nifti(volume)).suffix == ".nii.gz"
    assert sniff(files.nifti(volume, compress=False)).suffix == ".nii"
    for bad in (b"", b"GIF89a....", b"BM" + bytes(100), gzip.compress(b"hello")):
        with pytest.raises(ApiError) as info:
            sniff(bad)
        assert info.value.status == 415


def test_display_label() -> None:
    assert display_label("../../etc/passwd") == "passwd"
    assert display_label("C:\\scans\\brain 01.nii.gz") == "brain 01.nii.gz"
    assert display_label("x<script>.png") == "x_script_.png"
    assert display_label("..") == "upload" and display_label(None) == "upload"
    assert len(display_label("a" * 500)) == 80
    assert (
        display_label("Gehirn_Übersicht.png") == "Gehirn_Übersicht.png"
        and display_label("脑.png") == "脑.png"
    )


def test_worker_plan() -> None:
    assert ServeSettings().plan(cores=2) == (1, 2)
    assert ServeSettings().plan(cores=16) == (4, 4)
    assert ServeSettings(workers=3).plan(cores=8) == (3, 2)
    assert ServeSettings(workers=4, threads=1).plan(cores=2) == (4, 1)
    with pytest.raises(ConfigError, match="workers=0"):
        ServeSettings(workers=0)
    with pytest.raises(ConfigError, match="max_upload_mb"):
        ServeSettings(max_upload_mb=0)


async def _chunks(count: int, size: int, seen: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        seen.append(size)
        yield b"\0" * size


def test_limit_enforced_while_streaming() -> None:
    """The body is refused after the chunk that crosses the limit, not after reading it all."""
    seen: list[int] = []
    with pytest.raises(ApiError) as info:
        asyncio.run(read_upload("application/octet-stream", None, _chunks(1000, 10_000, seen), 50_000))
    assert info.value.status == 413 and len(seen) == 6
    seen.clear()
    with pytest.raises(ApiError):  # an announced length is refused before reading anything
        asyncio.run(read_upload("application/octet-stream", "10000000", _chunks(1000, 10_000, seen), 50_000))
    assert seen == []


def test_multipart_limit_while_streaming() -> None:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'

    async def body(seen: list[int]) -> AsyncIterator[bytes]:
        yield head
        async for chunk in _chunks(1000, 10_000, seen):
            yield chunk

    seen: list[int] = []
    with pytest.raises(ApiError) as info:
        asyncio.run(read_upload("multipart/form-data; boundary=b", None, body(seen), 50_000))
    assert info.value.status == 413 and len(seen) == 6


def test_asgi_streaming_413(served: Served) -> None:
    """Through the whole app (ASGI): a chunked body stops being read once over the limit."""
    client = make_client(served, max_upload_mb=0.05)
    sent: list[dict[str, Any]] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"\0" * 10_000, "more_body": reads < 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "http_version": "1.1", "method": "POST", "path": "/api/analyze",
        "raw_path": b"/api/analyze", "query_string": b"", "root_path": "", "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234), "headers": [(b"content-type", b"application/octet-stream")],
    }  # fmt: skip
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 413 and reads == 6


def test_segmentation_only_bundle(served: Served, tmp_path: Path) -> None:
    """A bundle without a classifier: /api/model and /api/analyze answer; tumours are labelled 'tumour'."""
    from braintumor.bundle.create import create_bundle
    from braintumor.bundle.load import load_bundle

    path = create_bundle(served.path.parent / "seg", None, tmp_path / "seg-only")
    client = make_client(Served(path, served.phantoms, load_bundle(path)))
    model = client.get("/api/model").json()
    assert model["classes"] == [] and model["expansion"] is None and model["has_classifier"] is False
    assert set(model["models"]) == {"seg"} and model["no_tumour_class"] == "notumor"
    for k in range(2):
        r = upload(client, served.png(k).read_bytes(), name="scan.png", gradcam="true")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["class"] == ("tumour" if body["tumour"] else "notumor") and body["probabilities"] == {}
        assert body["images"]["gradcam"] is None and body["images"]["overlay"] is not None


def test_fused_bundle(served: Served, tmp_path: Path) -> None:
    """A bundle fusing a region-feature forest: /api/model shows the fusion (no training paths) and
    analyses carry both the fused and the classifier's own probabilities."""
    from braintumor.bundle.create import create_bundle
    from braintumor.bundle.load import load_bundle

    runs = served.path.parent
    path = create_bundle(runs / "seg", runs / "cls", tmp_path / "fused", fuse_forest=True, forest_trees=5)
    client = make_client(Served(path, served.phantoms, load_bundle(path)))
    model = client.get("/api/model").json()
    fusion = model["fusion"]
    assert set(fusion) == {"weight_cnn", "features", "trees", "seed"} and fusion["trees"] == 5
    assert fusion["weight_cnn"] == 0.5 and len(fusion["features"]) == 9 and str(runs) not in str(model)
    tumour_classes = set(model["classes"]) - {"notumor"}
    for k in range(2):
        r = upload(client, served.png(k).read_bytes(), name="scan.png")
        assert r.status_code == 200, r.text
        body = r.json()
        expected = tumour_classes if body["tumour"] else set()
        assert set(body["cnn_probabilities"]) == expected
        assert not body["tumour"] or set(body["probabilities"]) == tumour_classes


def test_tiff_with_too_many_pages_names_its_page_count() -> None:
    import io

    import tifffile

    from braintumor.serve.preflight import check_size
    from braintumor.serve.sniff import UploadFormat

    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        for _ in range(4097):
            tif.write(np.zeros((1, 1), np.uint8), contiguous=False)
    with pytest.raises(ApiError) as refused:
        check_size(UploadFormat("tiff", ".tif"), buffer.getvalue(), "stack.tif", 16_000_000, 64_000_000)
    assert refused.value.status == 413
    assert "stack.tif: the TIFF has 4,097 pages, more than the limit of 4,096" in str(refused.value)


def test_broken_tiff_header_leaves_no_log_line_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    import io

    import tifffile

    from braintumor.serve.preflight import check_size
    from braintumor.serve.sniff import UploadFormat

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((5, 5), np.uint8))
    data = bytearray(buffer.getvalue())
    data[4:8] = b"\xff\xff\xff\xff"  # the first page's offset points past the end
    check_size(UploadFormat("tiff", ".tif"), bytes(data), "bad.tif", 16_000_000, 64_000_000)
    assert "invalid offset" not in capfd.readouterr().err
