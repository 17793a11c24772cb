"""CLI verb ``braintumor serve``: the web page and REST API (FastAPI + uvicorn)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from braintumor.cli.common import app, err, run_guarded
from braintumor.extras import require

KEY_ENV = "BRAINTUMOR_API_KEY"
SERVE_MODULES = ("fastapi", "uvicorn", "python_multipart")  # braintumor[serve]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key(option: str | None) -> str | None:
    """The --api-key value; click reads an empty BRAINTUMOR_API_KEY as unset, so look at it here
    (an empty key is refused by ServeSettings instead of switching authentication off)."""
    if option is None and KEY_ENV in os.environ:
        return os.environ[KEY_ENV]
    return option


BundleOpt = Annotated[
    Path | None,
    typer.Option("--bundle", help="Bundle folder, .zip, or packaged name: t1ce (default), flair-lgg."),
]
HostOpt = Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=KEY_ENV,
        show_envvar=True,
        help="Require this key in the X-API-Key header of /api/analyze and /api/model.",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option(help="Analyses at once, as threads of this one process (default: cores / 4).")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per request (upload + queue + analysis); then 504.")]
HostsOpt = Annotated[
    str,
    typer.Option(
        "--allowed-hosts",
        help="Comma-separated Host header values to answer (e.g. localhost,127.0.0.1,scanner.example.org; "
        "*.example.org for subdomains); other hosts get 400. Default * answers any.",
    ),
]
BackendOpt = Annotated[
    str, typer.Option(help="auto (OpenVINO if installed, else torch), torch, onnx or openvino.")
]


@app.command("serve")
def serve(
    bundle: BundleOpt = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: KeyOpt = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload in MB; bigger ones get 413.")] = 25.0,
    workers: WorkersOpt = None,
    timeout: TimeoutOpt = 60.0,
    backend: BackendOpt = "auto",
    max_pixels: Annotated[int, typer.Option(help="Largest slice in pixels; bigger get 413.")] = 16_000_000,
    max_zip_mb: Annotated[
        float, typer.Option(help="Largest total of a zip upload's files, uncompressed, in MB; beyond: 413.")
    ] = 512.0,
    allowed_hosts: HostsOpt = "*",
) -> None:
    """Serve the analysis page at http://HOST:PORT/ and the REST API under /api (reference at /docs,
    schema at /openapi.json; both work offline).

    The model is loaded once; requests queue for the workers (threads of this process).

    Keep the default host 127.0.0.1 unless other machines must reach it, and then set an API key.

    Example: braintumor serve --bundle bundles/t1ce --port 8000
    """

    def go() -> None:
        for module in SERVE_MODULES:  # braintumor.serve imports them at module level
            require(module, "serve", "braintumor serve")
        import uvicorn

        from braintumor.serve import ServeSettings, create_app
        from braintumor.serve.settings import check_port, parse_hosts

        check_port(port)
        settings = ServeSettings(bundle=bundle, backend=backend, api_key=_key(api_key),
                                 max_upload_mb=max_upload_mb, workers=workers, timeout_s=timeout,
                                 max_pixels=max_pixels, max_zip_mb=max_zip_mb,
                                 allowed_hosts=parse_hosts(allowed_hosts))  # fmt: skip
        if not _is_loopback(host) and settings.api_key is None:
            err.print(f"[bold yellow]warning:[/] serving on {host} without an API key: anyone who can "
                      "reach this port can use the model; set --api-key or BRAINTUMOR_API_KEY")  # fmt: skip
        web = create_app(settings)
        service = web.state.service
        err.print(f"braintumor: model {service.bundle.name!r} ({service.backend_name}), {service.workers} "
                  f"worker(s) × {service.threads} thread(s); open http://{host}:{port}/")  # fmt: skip
        uvicorn.run(web, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)

    run_guarded(go)
