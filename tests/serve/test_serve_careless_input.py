"""Careless and hostile input (issue 21): blank API keys, bad ports, Host headers, offline docs and
timed-out analyses that used to keep the worker busy."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serve_files as files
import uvicorn
from fastapi.testclient import TestClient
from serve_helpers import Served, error_of, make_client, upload
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.errors import ConfigError
from braintumor.inference.analyzer import AnalysisCancelled, Analyzer
from braintumor.inference.pipeline import SliceEngine
from braintumor.inference.sources import InputItem, read_scan
from braintumor.serve.response import analysis_json
from braintumor.serve.settings import ServeSettings, parse_hosts

runner = CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace uvicorn.run: record its arguments and stop the service instead of serving."""
    calls: list[dict[str, Any]] = []

    def fake_run(web: Any, **kwargs: Any) -> None:
        calls.append({"app": web, **kwargs})
        web.state.service.close()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv("BRAINTUMOR_API_KEY", raising=False)
    return calls


def serve_fails(served: Served, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``braintumor serve``; expect exit 1 and one error line; return it."""
    result = runner.invoke(app, ["serve", "--bundle", str(served.path), *args], env=env)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# ---------------------------------------------------------------- API key


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--api-key", ""], None), (["--api-key", "   "], None), ([], {"BRAINTUMOR_API_KEY": ""})],
    ids=["empty option", "blank option", "empty variable"],
)
def test_blank_api_key_refused(
    served: Served, started: list[dict[str, Any]], args: list[str], env: dict[str, str] | None
) -> None:
    """An empty or blank key is an error at start-up; it used to switch authentication off."""
    line = serve_fails(served, *args, env=env)
    assert "API key is" in line and "BRAINTUMOR_API_KEY" in line
    assert started == []


def test_api_key_from_variable(served: Served, started: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["serve", "--bundle", str(served.path)], env={"BRAINTUMOR_API_KEY": "k3y"})
    assert result.exit_code == 0, result.output
    assert started[0]["app"].state.service.settings.api_key == "k3y"


@pytest.mark.parametrize("key", ["", " ", " s3cret", "s3cret\n", "clé"])
def test_api_key_settings(key: str) -> None:
    with pytest.raises(ConfigError, match="API key"):
        ServeSettings(api_key=key)


# ---------------------------------------------------------------- port


@pytest.mark.parametrize("port", ["70000", "65536", "0", "-1"])
def test_port_out_of_range(served: Served, started: list[dict[str, Any]], port: str) -> None:
    line = serve_fails(served, "--port", port)
    assert f"--port {port}:" in line and "1 to 65535" in line
    assert started == []


# ---------------------------------------------------------------- Host header


def test_parse_hosts() -> None:
    assert parse_hosts("localhost, 127.0.0.1,::1,*.Example.org") == (
        "localhost", "127.0.0.1", "[::1]", "*.example.org",
    )  # fmt: skip
    assert parse_hosts("*") == ("*",)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("", "names no host"), ("a,,b", "empty entry"), ("foo*", r"'foo\*'"), ("*x.org", r"'\*x.org'"),
     ("localhost:8000", "without a port"), ("[::1", r"'\[::1'"), ("a b", "'a b'")],
)  # fmt: skip
def test_bad_hosts(text: str, pattern: str) -> None:
    """Refused with a message naming the entry (Starlette's own check is an assert)."""
    with pytest.raises(ConfigError, match=pattern):
        ServeSettings(allowed_hosts=parse_hosts(text))


def test_allowed_hosts_cli(served: Served, started: list[dict[str, Any]]) -> None:
    result = runner.invoke(app, ["serve", "--bundle", str(served.path), "--allowed-hosts", "localhost,::1"])
    assert result.exit_code == 0, result.output
    assert started[0]["app"].state.service.settings.allowed_hosts == ("localhost", "[::1]")
    assert "empty entry" in serve_fails(served, "--allowed-hosts", "localhost,")


def test_other_host_400(served: Served) -> None:
    with make_client(served, allowed_hosts=("localhost", "*.example.org")) as client:
        refused = client.get("/api/health", headers={"host": "evil.test"})
        assert "Host 'evil.test'" in error_of(refused, 400) and "--allowed-hosts" in error_of(refused, 400)
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert error_of(upload(client, served.png().read_bytes()), 400)  # TestClient's Host: testserver
        for host in ("localhost", "localhost:8000", "scanner.example.org"):
            assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    with make_client(served) as client:  # default: any host
        assert client.get("/api/health", headers={"host": "evil.test"}).status_code == 200


# ---------------------------------------------------------------- offline docs


def test_docs_offline(client: TestClient) -> None:
    """/docs is a local page: no script or style from a CDN, only links to this server."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.search(r"https?://", page.text) is None, "an absolute URL in /docs"
    assert re.findall(r'(?:href|src)="([^"]*)"', page.text) == [
        "data:,",
        "/static/docs.css",
        "/openapi.json",
        "/",
    ]
    assert "/api/analyze" in page.text and "X-API-Key" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/docs.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # it loaded a CDN script too


# ---------------------------------------------------------------- timed-out work is cancelled


def test_cancelled_analyzer_stops(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The analyzer reads its cancel check before each batch (one batch runs, then it stops), the
    response before rendering each volume slice."""
    path = tmp_path / "volume.nii.gz"
    path.write_bytes(files.nifti(np.stack([served.array(k % 3) for k in range(12)], axis=2)))
    scan = read_scan(InputItem(str(path), (path,)))
    analyzer = Analyzer.from_bundle(served.path, backend="torch", batch_size=4, prefetch=False)
    batches: list[int] = []
    run = SliceEngine.run

    def counted(self: SliceEngine, items: list[Any], gradcam: bool = False) -> Any:
        batches.append(len(items))
        return run(self, items, gradcam)

    monkeypatch.setattr(SliceEngine, "run", counted)
    result = analyzer.analyze_scan(scan, cancelled=threading.Event())
    assert result.ok and batches == [4, 4, 4]
    with pytest.raises(AnalysisCancelled):
        analysis_json(result, scan, "v.nii.gz", "nifti", "all", None, cancelled=lambda: True)
    batches.clear()
    with pytest.raises(AnalysisCancelled):
        analyzer.analyze_scan(scan, cancelled=lambda: len(batches) >= 1)
    assert batches == [4]


def _slow_volume_batches(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[float]:
    """Make every batch of more than one slice take ``seconds`` longer; returns its start times."""
    starts: list[float] = []
    run = SliceEngine.run

    def slow(self: SliceEngine, items: list[Any], gradcam: bool = False) -> Any:
        if len(items) > 1:
            starts.append(time.monotonic())
            time.sleep(seconds)
        return run(self, items, gradcam)

    monkeypatch.setattr(SliceEngine, "run", slow)
    return starts


def _timed_slice(client: TestClient, data: bytes) -> float:
    start = time.perf_counter()
    response = upload(client, data, name="slice.png")
    assert response.status_code == 200, response.text
    return time.perf_counter() - start


def test_slice_after_timed_out_volumes(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four volumes past their deadline stop computing: a slice sent right after them is answered
    as fast as on an idle server. Before, the first volume kept the only worker busy for its whole
    analysis (40 batches × 0.1 s) and the slice timed out behind it."""
    timeout = 0.5
    volume = files.nifti(np.stack([served.array(k % 4) for k in range(640)], axis=2).astype(np.int16))
    slice_png = served.png().read_bytes()
    with make_client(served, timeout_s=timeout) as client:
        _timed_slice(client, slice_png)  # warm-up
        baseline = min(_timed_slice(client, slice_png) for _ in range(3))
        starts = _slow_volume_batches(monkeypatch, 0.1)
        for _ in range(4):
            assert "longer than 0.5 s" in error_of(upload(client, volume, name="big.nii.gz"), 504)
        after = _timed_slice(client, slice_png)
        batches = len(starts)
        time.sleep(0.3)
        assert len(starts) == batches, "a timed-out volume is still being analysed"
    print(f"slice: idle {baseline * 1000:.0f} ms, after 4 timed-out volumes {after * 1000:.0f} ms; "
          f"{batches} volume batches run (of 4 × 40)")  # fmt: skip
    assert after < baseline + 0.3
    assert batches <= 4 * (timeout / 0.1 + 2)
