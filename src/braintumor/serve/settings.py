"""Server settings (one frozen dataclass) and the worker × thread plan that fits the CPU."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from braintumor.errors import ConfigError

MB = 1_000_000
DEFAULT_MAX_PIXELS = 16_000_000  # one slice: 4000 × 4000
DEFAULT_MAX_VOXELS = 64_000_000  # one volume: 512 × 512 × 244
DEFAULT_MAX_SLICES = 1024
DEFAULT_MAX_ZIP_MB = 512.0  # a zip's files, uncompressed
DEFAULT_MAX_ZIP_MEMBERS = 2048  # a zip's files (two series at the slice limit)
DEFAULT_MAX_SLICE_IMAGES = 256  # volume slices whose PNG layers one response carries
PORTS = range(1, 65536)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs; the CLI fills it from its options.

    Attributes:
        bundle: model bundle folder or zip; None = the packaged default bundle.
        backend: ``auto`` (OpenVINO if installed, else torch), ``torch``, ``onnx`` or ``openvino``;
            ``precision``: ``auto``, ``bf16`` or ``fp32``.
        api_key: when set, ``/api/analyze`` and ``/api/model`` need it in the ``X-API-Key`` header.
        max_upload_mb: largest accepted upload in MB (10^6 bytes); bigger bodies get 413.
        workers: analyses that run at once (None: one per 4 cores, at least 1).
        threads: torch/ONNX threads per worker (None: cores // workers, at least 1).
        timeout_s: whole-request deadline (upload + queue + analysis); past it the answer is 504.
        max_pending: requests admitted at once (running + queued; None: 8 per worker); more get 503.
        max_pixels / max_slices / max_voxels: decoded-size limits per slice / volume (413 beyond).
        max_zip_mb / max_zip_members: a zip upload's files, their uncompressed size in MB and
            their number (413 beyond; see :mod:`~braintumor.serve.archive`).
        max_slice_images: volume slices whose PNG layers one response carries (over all volumes of
            a zip); beyond it the tumour slices and evenly spaced others get them.
        allowed_hosts: Host header values answered (``*``: any; ``*.example.org``: its subdomains);
            requests naming another host get 400 (see :func:`parse_hosts`).
    """

    bundle: Path | None = None
    backend: str = "auto"
    precision: str = "auto"
    api_key: str | None = None
    max_upload_mb: float = 25.0
    workers: int | None = None
    threads: int | None = None
    timeout_s: float = 60.0
    max_pending: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_slices: int = DEFAULT_MAX_SLICES
    max_voxels: int = DEFAULT_MAX_VOXELS
    max_zip_mb: float = DEFAULT_MAX_ZIP_MB
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_slice_images: int = DEFAULT_MAX_SLICE_IMAGES
    allowed_hosts: tuple[str, ...] = ("*",)

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0:
            raise ConfigError(f"max_upload_mb={self.max_upload_mb}; expected a positive size in MB")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout={self.timeout_s}; expected a positive number of seconds")
        for name in ("workers", "threads", "max_pending"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value}; expected at least 1 (or leave it unset)")
        if min(self.max_pixels, self.max_slices, self.max_voxels) < 1:
            raise ConfigError("max_pixels, max_slices and max_voxels must be positive")
        if self.max_zip_mb <= 0 or min(self.max_zip_members, self.max_slice_images) < 1:
            raise ConfigError(
                f"max_zip_mb={self.max_zip_mb}, max_zip_members={self.max_zip_members}, "
                f"max_slice_images={self.max_slice_images}; expected positive numbers"
            )
        if self.api_key is not None:
            check_api_key(self.api_key)
        if not self.allowed_hosts:
            raise ConfigError("allowed_hosts is empty; expected host names, or ('*',) to answer any")
        for host in self.allowed_hosts:
            check_host(host)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_zip_bytes(self) -> int:
        return int(self.max_zip_mb * MB)

    def plan(self, cores: int | None = None) -> tuple[int, int]:
        """(workers, threads per worker) with workers × threads <= cores unless workers > cores."""
        cores = cores or available_cores()
        workers = self.workers or max(1, cores // 4)
        threads = self.threads or max(1, cores // workers)
        return workers, threads

    def pending_limit(self, workers: int) -> int:
        return self.max_pending or 8 * workers


def check_api_key(key: str) -> None:
    """ConfigError unless ``key`` is non-blank printable ASCII without surrounding spaces."""
    if not key.strip():
        raise ConfigError(
            f"the API key is {'empty' if not key else 'blank'} ({key!r}); set a non-empty --api-key "
            "or BRAINTUMOR_API_KEY (e.g. from `openssl rand -hex 16`), or unset both to serve without a key"
        )
    if key != key.strip() or not (key.isascii() and key.isprintable()):
        raise ConfigError(
            "the API key has surrounding spaces or characters other than printable ASCII, which an "
            "X-API-Key header cannot carry as they are; use letters, digits and punctuation only"
        )


def check_port(port: int) -> None:
    """ConfigError unless ``port`` is a TCP port (1-65535)."""
    if port not in PORTS:
        raise ConfigError(f"--port {port}: expected a TCP port from 1 to 65535 (e.g. --port 8000)")


def check_host(host: str) -> None:
    """ConfigError unless ``host`` is a pattern Starlette's TrustedHostMiddleware can match:
    ``*``, ``*.domain``, a name, an IPv4 address or a bracketed IPv6 address (never a port)."""
    fix = "expected a host name such as localhost, *.example.org, 127.0.0.1 or [::1], without a port"
    if host == "*":
        return
    name = host[2:] if host.startswith("*.") else host
    if not name or "*" in name or any(c.isspace() or c in "/@" for c in name):
        raise ConfigError(f"allowed host {host!r}: {fix}")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ConfigError(f"allowed host {host!r} is not an IPv6 address in brackets; {fix}") from None
    elif ":" in name:
        raise ConfigError(f"allowed host {host!r}: {fix}")


def parse_hosts(text: str) -> tuple[str, ...]:
    """``--allowed-hosts`` text -> lower-case patterns: comma-separated, bare IPv6 put in brackets.

    Example: ``parse_hosts("localhost, 127.0.0.1,::1")`` -> ``("localhost", "127.0.0.1", "[::1]")``.
    """
    hosts = tuple(h.strip().lower() for h in text.split(","))
    if not any(hosts):
        raise ConfigError(f"--allowed-hosts {text!r} names no host; expected e.g. localhost,127.0.0.1 or *")
    if "" in hosts:
        raise ConfigError(
            f"--allowed-hosts {text!r} has an empty entry; separate host names by single commas"
        )
    return tuple(_bracket_ipv6(h) for h in hosts)


def _bracket_ipv6(host: str) -> str:
    try:
        return f"[{ipaddress.IPv6Address(host)}]"
    except ValueError:
        return host
