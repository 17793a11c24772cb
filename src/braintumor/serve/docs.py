"""The API reference at ``/docs``: one local HTML page made from the OpenAPI schema.

FastAPI's own ``/docs`` (Swagger UI) and ``/redoc`` load their scripts from a CDN, so they are
blank offline and on isolated hospital networks; this page needs nothing but the server. The full
schema is at ``/openapi.json`` for API clients and code generators.
"""

from __future__ import annotations

from html import escape
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


def _parameters(op: dict[str, Any]) -> str:
    items = [
        f"<li><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))}): "
        f"{escape(p.get('description', ''))}</li>"
        for p in op.get("parameters", [])
    ]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _responses(op: dict[str, Any]) -> str:
    codes = [
        f"<code>{escape(code)}</code> {escape(r.get('description', ''))}"
        for code, r in op.get("responses", {}).items()
    ]
    return f"<p class='codes'>{'; '.join(codes)}</p>" if codes else ""


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    return (
        f"<section><h2><span class='method'>{method.upper()}</span> <code>{escape(path)}</code></h2>"
        f"<p>{escape(op.get('summary', ''))}</p>{_parameters(op)}{_responses(op)}</section>"
    )


def docs_page(schema: dict[str, Any]) -> str:
    """HTML listing every operation of ``schema`` (an OpenAPI dict): method, path, summary,
    parameters and status codes; it links only to this server (``/``, ``/openapi.json``)."""
    info = schema.get("info", {})
    operations = "".join(
        _operation(path, method, op)
        for path, ops in schema.get("paths", {}).items()
        for method, op in ops.items()
        if method in METHODS
    )
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)} · API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/docs.css">
</head>
<body>
  <h1>{escape(title)} · REST API</h1>
  <p>{escape(info.get("description", ""))}</p>
  <p>Machine-readable schema: <a href="/openapi.json">/openapi.json</a> (OpenAPI; load it in any
  OpenAPI client or viewer). Analysis page: <a href="/">/</a>.</p>
  <p>Example: <code>curl -F file=@scan.nii.gz -H "X-API-Key: KEY" SERVER/api/analyze</code>
  (the key only when the server has one).</p>
  {operations}
</body>
</html>
"""
