"""Read an upload from the request body while it streams in, refusing it once it is too big.

Two encodings: ``multipart/form-data`` with the file in the field ``file`` (what browsers and
``curl -F file=@scan.nii.gz`` send), or the raw bytes as the whole body (any other content
type, e.g. ``application/octet-stream``). The body never touches the disk here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from braintumor.io_utils import safe_stem
from braintumor.serve.errors import ApiError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD = "file"
MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and small extra fields


@dataclass
class Upload:
    """The uploaded bytes and a display label (the client's file name, sanitised; never a path)."""

    data: bytes
    label: str


def display_label(filename: str | None, default: str = "upload") -> str:
    """The last component of a client file name, letters of any script kept and unsafe characters
    replaced (:func:`~braintumor.io_utils.safe_stem`; at most 80 characters).

    Only ever shown to people or used as a JSON label; files on the server get fixed names.
    """
    if not filename:
        return default
    name = unicodedata.normalize("NFKC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    return safe_stem(name, default="", max_bytes=320)[:80].strip(" .") or default


def too_large(size: int | str, limit: int) -> ApiError:
    return ApiError(
        413, f"upload of {size} bytes exceeds the limit of {limit} bytes ({limit / 1e6:g} MB); "
        "send a smaller file (crop, or compress a NIfTI as .nii.gz) or raise --max-upload-mb",
    )  # fmt: skip


class _Parts:
    """python-multipart callbacks that keep the ``file`` part in memory, up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value = b"", b""
        self.current: bytearray | None = None
        self.file: bytearray | None = None
        self.filename: str | None = None

    def on_part_begin(self) -> None:
        self.headers, self.current = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") == FIELD.encode() and self.file is None:
            self.current = self.file = bytearray()
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current is not None:
            self.current += data[start:end]
            if len(self.current) > self.limit:
                raise too_large(f"more than {self.limit}", self.limit)

    def on_part_end(self) -> None:
        self.current = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end, "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }  # fmt: skip


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise too_large(f"more than {limit}", limit)
        yield chunk


async def read_upload(
    content_type: str, content_length: str | None, chunks: AsyncIterator[bytes], limit: int
) -> Upload:
    """Stream the body in; stop with 413 as soon as it passes ``limit`` bytes of file data.

    Raises:
        ApiError: 413 too large (announced by Content-Length or counted while streaming),
            400 malformed multipart or no ``file`` field, 422 empty file.
    """
    mime, options = parse_options_header(content_type)
    multipart = mime == b"multipart/form-data"
    body_limit = limit + MULTIPART_SLACK if multipart else limit
    if content_length is not None and content_length.isdigit() and int(content_length) > body_limit:
        raise too_large(int(content_length), limit)
    if not multipart:
        data = bytearray()
        async for chunk in _limited(chunks, body_limit):
            data += chunk
        return _checked(bytes(data), "upload")
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data without a boundary; let the HTTP client build the form")
    parts = _Parts(limit)
    parser = MultipartParser(boundary, parts.callbacks())
    try:
        async for chunk in _limited(chunks, body_limit):
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, f"malformed multipart/form-data body ({exc})") from None
    if parts.file is None:
        raise ApiError(
            400, f"no '{FIELD}' field in the form; send the file as multipart field '{FIELD}' "
            "(curl -F file=@slice.png) or as the raw request body",
        )  # fmt: skip
    return _checked(bytes(parts.file), display_label(parts.filename))


def _checked(data: bytes, label: str) -> Upload:
    if not data:
        raise ApiError(422, f"{label}: the uploaded file is empty")
    return Upload(data, label)
