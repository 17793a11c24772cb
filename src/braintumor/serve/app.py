"""The FastAPI app: the page at ``/``, the REST API under ``/api``, its reference at ``/docs``
(a local page; no CDN) and schema at ``/openapi.json``.

Example:
    >>> from braintumor.serve import ServeSettings, create_app
    >>> app = create_app(ServeSettings(bundle=Path("bundles/t1ce")))   # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles

from braintumor import __version__
from braintumor.inference.results import RESEARCH_USE
from braintumor.serve.docs import docs_page
from braintumor.serve.errors import ApiError
from braintumor.serve.handlers import AllowedHosts, SecurityHeaders, install_error_handlers
from braintumor.serve.response import ImagesMode
from braintumor.serve.service import AnalysisService
from braintumor.serve.settings import ServeSettings
from braintumor.serve.sniff import ACCEPTED
from braintumor.serve.upload import read_upload

STATIC = Path(str(resources.files("braintumor.serve"))) / "static"
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="When the server has a key.")
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": ACCEPTED}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
DESCRIPTION = (
    "Upload an MRI slice or volume to `POST /api/analyze` and get the tumour's class, probabilities, "
    "area, bounding box, uncertainty and PNG layers (overlay, mask, Grad-CAM) as data URLs; for a "
    "volume also its mask as NIfTI and, for DICOM, as DICOM SEG; and a self-contained HTML report. "
    "A zip of DICOM series (or image slices) answers `{'results': [...]}`, one entry per series. "
    f"Formats are recognised from the content: {ACCEPTED}. Errors are JSON `{{'error': message}}`."
)


def page_html() -> str:
    """``static/index.html`` with its ``{{research_use}}`` placeholder filled in (the statement's one
    source is :data:`~braintumor.inference.results.RESEARCH_USE`, as in the HTML reports)."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    return text.replace("{{research_use}}", escape(RESEARCH_USE))


def _service(request: Request) -> AnalysisService:
    service: AnalysisService = request.app.state.service
    return service


def require_key(request: Request, key: str | None = Depends(API_KEY_HEADER)) -> None:
    """401 unless the server has no key or the request's ``X-API-Key`` matches it."""
    expected = _service(request).settings.api_key
    if expected is None:
        return
    if not key:
        raise ApiError(401, "this server needs an API key: send it in the X-API-Key header")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise ApiError(401, "wrong API key (X-API-Key header); ask the server's operator for the key")


def create_app(settings: ServeSettings | None = None, service: AnalysisService | None = None) -> FastAPI:
    """Build the app; the bundle is loaded here, once (pass ``service`` to reuse a loaded one).

    Raises:
        BundleError: the bundle is missing or invalid (before any request is served).
    """
    settings = settings or ServeSettings()
    service = service or AnalysisService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="braintumor", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # fmt: skip
    app.state.service = service
    if "*" not in settings.allowed_hosts:
        app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the host check's 400 has them too
    install_error_handlers(app)
    _add_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_routes(app: FastAPI) -> None:
    index = page_html()  # read once, at startup

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(index)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/api/health", summary="Liveness, limits and load")
    def health(request: Request) -> dict[str, Any]:
        service = _service(request)
        s = service.settings
        return {
            "status": "ok", "version": __version__, "model": service.model_ref(),
            "auth_required": s.api_key is not None, "max_upload_mb": s.max_upload_mb,
            "workers": service.workers, "threads_per_worker": service.threads,
            "pending": service.pending, "pending_limit": service.pending_limit,
            "timeout_s": s.timeout_s, "formats": ACCEPTED, "max_zip_mb": s.max_zip_mb,
            "max_zip_members": s.max_zip_members, "max_slice_images": s.max_slice_images,
        }  # fmt: skip

    @app.get("/api/model", summary="The model bundle: classes, metrics, version",
             dependencies=[Depends(require_key)])  # fmt: skip
    def model(request: Request) -> dict[str, Any]:
        return _service(request).model_info()

    @app.post(
        "/api/analyze", summary="Analyse one uploaded slice, volume or zip of DICOM series",
        response_model=None,
        dependencies=[Depends(require_key)], openapi_extra=UPLOAD_BODY,
        responses={code: {"description": text} for code, text in (
            (401, "missing or wrong API key"), (413, "upload, image or zip too large (or a zip bomb)"),
            (415, "unknown format"), (422, "unusable content (truncated, blank, NaN, unsafe zip...)"),
            (503, "busy"), (504, "timed out"))},
    )  # fmt: skip
    async def analyze(
        request: Request,
        gradcam: bool = Query(True, description="Compute the Grad-CAM heat map of tumour slices."),
        images: ImagesMode = Query(
            "all",
            description="PNG layers for all slices, tumour slices or none "
            "(volumes: at most the server's max_slice_images slices per response).",
        ),
        dicom_seg: bool = Query(True, description="DICOM input with a tumour: its DICOM SEG as a data URL."),
        report: bool = Query(
            True,
            description="Each input's self-contained HTML report (no patient identifiers) as a data URL.",
        ),
    ) -> Response:
        service = _service(request)
        s = service.settings
        with service.admit():
            try:
                async with asyncio.timeout(s.timeout_s):
                    upload = await read_upload(
                        request.headers.get("content-type", ""), request.headers.get("content-length"),
                        request.stream(), s.max_upload_bytes,
                    )  # fmt: skip
                    body = await service.analyze(upload, gradcam, images, dicom_seg, report)
            except TimeoutError:
                raise ApiError(
                    504, f"the request took longer than {s.timeout_s:g} s (upload, queue and analysis); "
                    "retry when the server is less busy, or upload a smaller scan",
                ) from None  # fmt: skip
        return Response(body, media_type="application/json")
