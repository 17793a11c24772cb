"""Load test of ``braintumor serve``: N concurrent clients on loopback for a bounded time.

Starts ``braintumor serve`` as a subprocess on a free loopback port, warms it up, then lets
``--clients`` threads (one ``httpx.Client`` each) post the same slice to ``/api/analyze`` for
``--seconds``. Prints one JSON object: requests/s, p50/p95 latency, the error count (must be 0;
the exit status is 1 otherwise) and the server's RSS at the start, the end and its maximum.

Usage:
    python benchmarks/serve_load.py [--bundle B] [--clients 4] [--seconds 20] [--workers N] [--no-gradcam]

Without ``--bundle`` the real-size bundle of ``benchmarks/analyze.py`` is trained for a few steps
(U-Net F=16, ResNet-18 ROI classifier and gate, 128 px). The input is a 256 px phantom slice
with a tumour.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(bundle: Path, workers: int | None, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    script = Path(sys.executable).with_name("braintumor")
    cmd = (
        [str(script)]
        if script.is_file()
        else [sys.executable, "-c", "from braintumor.cli import main; main()"]
    )
    cmd += ["serve", "--bundle", str(bundle), "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"braintumor serve exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"braintumor serve did not start within 180 s:\n{log.read_text()[-2000:]}")


def tumour_slice(folder: Path) -> Path:
    """The 256 px glioma phantom PNG with the largest tumour."""
    from PIL import Image

    from braintumor.data.phantom import generate_phantoms

    frame = generate_phantoms(folder, n_patients=1, slices_per_patient=6, size=256, classes=["glioma"]).frame
    areas = [int(np.count_nonzero(np.asarray(Image.open(m)))) for m in frame["mask"]]
    return Path(str(frame["image"].iloc[int(np.argmax(areas))]))


Results = dict[str, list[Any]]


def client_loop(url: str, data: bytes, params: dict[str, str], stop: float, out: Results) -> None:
    with httpx.Client(timeout=120) as client:
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                r = client.post(f"{url}/api/analyze", params=params, files={"file": ("slice.png", data)})
                ok = r.status_code == 200
                error = "" if ok else f"{r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            out["latency"].append(time.perf_counter() - start)
            if not ok:
                out["errors"].append(error)


def run_load(url: str, pid: int, data: bytes, clients: int, seconds: float, gradcam: bool) -> dict[str, Any]:
    params = {"gradcam": str(gradcam).lower()}
    for _ in range(2):  # warm-up: first calls build Grad-CAM copies and allocator pools
        httpx.post(f"{url}/api/analyze", params=params, files={"file": ("slice.png", data)}, timeout=300)
    rss_start = rss_mb(pid)
    results: Results = {"latency": [], "errors": []}
    samples = [rss_start]
    stop = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(url, data, params, stop, results)) for _ in range(clients)
    ]
    began = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        samples.append(rss_mb(pid))
        time.sleep(0.5)
    elapsed = time.perf_counter() - began
    latency = np.asarray(results["latency"]) * 1000
    return {
        "requests": len(latency),
        "requests_per_s": round(len(latency) / elapsed, 2),
        "latency_ms": {
            "p50": round(float(np.percentile(latency, 50)), 1),
            "p95": round(float(np.percentile(latency, 95)), 1),
            "mean": round(float(latency.mean()), 1),
            "max": round(float(latency.max()), 1),
        },
        "errors": len(results["errors"]),
        "error_examples": sorted(set(results["errors"]))[:3],
        "rss_mb": {"start": rss_start, "end": rss_mb(pid), "max": max(samples)},
        "wall_s": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="Bundle to serve (default: train the bench bundle).")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients.")
    parser.add_argument("--seconds", type=float, default=20.0, help="How long the clients post.")
    parser.add_argument("--workers", type=int, help="Server workers (default: the server's own).")
    parser.add_argument("--no-gradcam", action="store_true", help="Ask for no Grad-CAM.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="braintumor-serve-load-") as tmp:
        root = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from analyze import train_bundle  # the real-size bench bundle of benchmarks/analyze.py

            bundle = train_bundle(root / "train")
        image = tumour_slice(root / "phantoms")
        proc, url = start_server(bundle, args.workers, root / "server.log")
        data = image.read_bytes()
        try:
            health = httpx.get(f"{url}/api/health").json()
            figures = run_load(url, proc.pid, data, args.clients, args.seconds, not args.no_gradcam)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    summary = {
        "command": "python " + " ".join(sys.argv),
        "bundle": str(args.bundle) if args.bundle else "bench bundle (U-Net F=16 + ResNet-18 x2, 128 px)",
        "input": f"glioma phantom slice, 256x256 PNG, {len(data)} bytes",
        "clients": args.clients, "seconds": args.seconds, "gradcam": not args.no_gradcam,
        "cores": os.cpu_count(), "server_workers": health["workers"],
        "server_threads_per_worker": health["threads_per_worker"], **figures,
    }  # fmt: skip
    print(json.dumps(summary))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
