"""API errors: an HTTP status and a message for the client (sent as ``{"error": message}``)."""

from __future__ import annotations

import re

# Messages of the readers that mean "too big" rather than "broken" (see data/readers.py,
# data/volumes.py, inference/sources.py).
_TOO_LARGE = re.compile(r"exceeds the limit|the limit is|decompression bomb", re.IGNORECASE)


class ApiError(Exception):
    """An expected failure of a request.

    Args:
        status: HTTP status (400 bad request, 401 key, 413 too large, 415 unknown format,
            422 unusable content, 501 optional package absent, 503 busy, 504 timeout).
        message: what was received, what was expected and how to fix it; never a server path.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_for(message: str) -> int:
    """413 for size/bomb refusals of the decoders, else 422 (the content is unusable)."""
    return 413 if _TOO_LARGE.search(message) else 422
