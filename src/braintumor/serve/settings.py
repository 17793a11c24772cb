"""Server settings (one frozen dataclass) and the worker × thread plan that fits the CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from braintumor.errors import ConfigError

MB = 1_000_000
DEFAULT_MAX_PIXELS = 16_000_000  # one slice: 4000 × 4000
DEFAULT_MAX_VOXELS = 64_000_000  # one volume: 512 × 512 × 244
DEFAULT_MAX_SLICES = 1024


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
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty; pass a non-empty --api-key or leave it unset")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    def plan(self, cores: int | None = None) -> tuple[int, int]:
        """(workers, threads per worker) with workers × threads <= cores unless workers > cores."""
        cores = cores or available_cores()
        workers = self.workers or max(1, cores // 4)
        threads = self.threads or max(1, cores // workers)
        return workers, threads

    def pending_limit(self, workers: int) -> int:
        return self.max_pending or 8 * workers
