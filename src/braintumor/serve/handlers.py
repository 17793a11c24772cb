"""Error handlers (every error is JSON ``{"error": message}``, never a traceback), the security
headers middleware and the Host check."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from braintumor.errors import MissingExtraError
from braintumor.serve.errors import ApiError

log = logging.getLogger("braintumor.serve")
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "header"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to a JSON error with the right status; log unexpected ones."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(MissingExtraError)
    async def missing_extra(request: Request, exc: MissingExtraError) -> JSONResponse:
        return error(501, str(exc))  # this server lacks an optional package (pydicom for DICOM)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, _validation_message(exc))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: Exception) -> JSONResponse:
        return error(400, "the client disconnected before the upload was complete")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, f"internal server error ({type(exc).__name__}); the server log has the details")


class SecurityHeaders:
    """Pure ASGI middleware: ``nosniff`` and ``no-referrer`` everywhere, a strict CSP on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] in ("/", "/docs") or scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AllowedHosts:
    """Starlette's :class:`TrustedHostMiddleware` (no www redirect) answering a Host it does not
    allow with the API's JSON 400 instead of plain text.

    Args:
        app: the app to protect.
        hosts: patterns as ``ServeSettings.allowed_hosts`` (checked there).
    """

    ADMITTED = "braintumor.host_admitted"

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        async def admitted(scope: Scope, receive: Receive, send: Send) -> None:
            scope[self.ADMITTED] = True
            await app(scope, receive, send)

        self.check = TrustedHostMiddleware(admitted, allowed_hosts=list(hosts), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_or_refuse(message: Message) -> None:
            if scope.get(self.ADMITTED):
                await send(message)
            elif message["type"] == "http.response.start":  # the check's own plain-text 400
                host = Headers(scope=scope).get("host", "")[:100]
                await error(400, f"this server does not answer to Host {host!r}; its operator lists "
                            "the names it answers to with --allowed-hosts")(scope, receive, send)  # fmt: skip

        await self.check(scope, receive, send_or_refuse)
