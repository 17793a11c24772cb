"""Start ``braintumor serve`` as a subprocess on a free loopback port (browser test, load bench)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(*args: str) -> list[str]:
    """``braintumor serve ARGS`` via the venv's console script (else the module, same Python)."""
    script = Path(sys.executable).with_name("braintumor")
    if script.is_file():
        return [str(script), "serve", *args]
    return [sys.executable, "-c", "from braintumor.cli import main; main()", "serve", *args]


@contextmanager
def live_server(bundle: Path, log: Path, *args: str, startup_s: float = 120) -> Iterator[tuple[str, int]]:
    """Yield (base URL, server pid); the server's output goes to ``log``; stopped on exit."""
    port = free_port()
    command = serve_command("--bundle", str(bundle), "--port", str(port), *args)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, proc, log, startup_s)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"braintumor serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"braintumor serve did not answer within {startup_s:g} s:\n{log.read_text()[-3000:]}")
