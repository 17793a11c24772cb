"""The analysis service: one loaded bundle, a bounded pool of workers, one job per request.

The bundle is loaded once. Each worker owns an :class:`Analyzer` (they share the bundle's
networks; each has its own Grad-CAM copy, which is not thread-safe), and torch / ONNX Runtime
use ``threads`` threads per worker so that workers × threads <= cores. Requests beyond the
workers wait in the executor's queue; more than ``pending_limit`` at once get 503. A request that
ends early (504 past its deadline) sets its job's cancel event: a queued job never starts, a
running one stops at its next batch of slices or rendered slice, freeing the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from braintumor.bundle.load import Bundle, load_bundle, resolve_bundle_path
from braintumor.errors import DataError, MissingExtraError
from braintumor.inference.analyzer import AnalysisCancelled, Analyzer, stop_if
from braintumor.inference.backends import make_backend
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.sources import InputItem, Scan, read_scan
from braintumor.serve.errors import ApiError, status_for
from braintumor.serve.preflight import check_size
from braintumor.serve.response import ImagesMode, analysis_json, mask_nifti_url
from braintumor.serve.settings import ServeSettings
from braintumor.serve.sniff import UploadFormat, sniff
from braintumor.serve.upload import Upload

log = logging.getLogger("braintumor.serve")


def _scrub(message: str, path: Path, label: str) -> str:
    """Replace server paths in a message by the client's label."""
    return message.replace(str(path), label).replace(str(path.parent), "<upload>").replace("<array>", label)


class AnalysisService:
    """Loads the bundle and runs analyses in a bounded worker pool.

    Args:
        settings: server settings (bundle, backend, limits, workers, threads).
        bundle: an already loaded bundle (tests); default: load ``settings.bundle``.
    """

    def __init__(self, settings: ServeSettings, bundle: Bundle | None = None) -> None:
        self.settings = settings
        self.workers, self.threads = settings.plan()
        self.pending_limit = settings.pending_limit(self.workers)
        self.pending = 0
        self._torch_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        path = resolve_bundle_path(settings.bundle)
        self.bundle = bundle or load_bundle(path, load_onnx=settings.backend == "onnx")
        backend = make_backend(self.bundle, settings.backend, settings.precision, self.threads)
        analysis = AnalysisSettings.for_bundle(
            self.bundle, max_pixels=settings.max_pixels, max_slices=settings.max_slices, prefetch=False
        )
        self.backend_name = backend.name
        self._idle: queue.SimpleQueue[Analyzer] = queue.SimpleQueue()
        for _ in range(self.workers):
            self._idle.put(Analyzer(self.bundle, backend, analysis))
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="braintumor-analyze")

    def close(self) -> None:
        """Stop the workers (running jobs finish) and restore torch's thread count."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        torch.set_num_threads(self._torch_threads)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Count a request in; 503 when ``pending_limit`` requests are already in."""
        if self.pending >= self.pending_limit:
            raise ApiError(
                503, f"the server is busy ({self.pending} requests running or waiting); retry shortly"
            )
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def analyze(self, upload: Upload, gradcam: bool, images: ImagesMode) -> bytes:
        """Sniff the format here, then decode and analyse in a worker; returns the JSON body.

        When the caller stops waiting (its deadline cancels this coroutine), the job is cancelled too.
        """
        fmt = sniff(upload.data)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._job, upload, fmt, gradcam, images, cancel)
        try:
            return await future
        finally:
            cancel.set()  # answered, timed out or abandoned: nothing more to compute for this request

    def _job(
        self, upload: Upload, fmt: UploadFormat, gradcam: bool, images: ImagesMode, cancel: threading.Event
    ) -> bytes:
        start = time.perf_counter()
        s = self.settings
        check_size(fmt, upload.data, upload.label, s.max_pixels, s.max_voxels)
        analyzer = self._idle.get()
        try:
            body = self._analyse(analyzer, upload, fmt, gradcam, images, cancel)
        except AnalysisCancelled:
            log.warning("stopped analysing %s after %.1f s: its request timed out (timeout %g s)",
                        upload.label, time.perf_counter() - start, s.timeout_s)  # fmt: skip
            raise ApiError(504, "the analysis was stopped: its request timed out") from None
        finally:
            self._idle.put(analyzer)
        body["model"] = self.model_ref()
        body["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 1)
        return json.dumps(body).encode()

    def _analyse(
        self,
        analyzer: Analyzer,
        upload: Upload,
        fmt: UploadFormat,
        gradcam: bool,
        images: ImagesMode,
        cancel: threading.Event,
    ) -> dict[str, Any]:
        """Decode, analyse and render one upload; :class:`AnalysisCancelled` once ``cancel`` is set."""
        with tempfile.TemporaryDirectory(prefix="braintumor-serve-") as tmp:
            path = Path(tmp) / f"upload{fmt.suffix}"
            path.write_bytes(upload.data)
            stop_if(cancel)
            scan = self._read(path, fmt, upload.label)
            result = analyzer.analyze_scan(scan, gradcam, cancelled=cancel)  # decoded once, by _read
            if not result.ok:
                message = _scrub(result.error, path, upload.label)
                status = 500 if ": unexpected " in message else status_for(message)
                if status == 500:
                    log.error("analysis of %s failed: %s", upload.label, message)
                raise ApiError(status, message)
            nifti = mask_nifti_url(scan, result, Path(tmp))
            return analysis_json(result, scan, upload.label, fmt.name, images, nifti, cancelled=cancel)

    def _read(self, path: Path, fmt: UploadFormat, label: str) -> Scan:
        item = InputItem(str(path), (path,), dicom=fmt.name == "dicom")
        try:
            s = self.settings
            return read_scan(item, s.max_pixels, s.max_slices, s.max_voxels)
        except MissingExtraError as exc:  # 501: this server cannot read the format (pydicom absent)
            raise ApiError(501, _scrub(str(exc), path, label)) from None
        except DataError as exc:
            message = f"{label}: {_scrub(exc.problem, path, label)}"
            raise ApiError(status_for(message), message) from None
        except Exception as exc:  # a decoder failing in a way the readers do not expect
            message = _scrub(f"{label}: cannot decode the {fmt.name} file ({type(exc).__name__}: {exc})",
                             path, label)  # fmt: skip
            raise ApiError(422, message) from None

    def model_ref(self) -> dict[str, str]:
        return {"name": self.bundle.name, "version": str(self.bundle.info.get("version", ""))}

    def model_info(self) -> dict[str, Any]:
        """Bundle facts for ``GET /api/model`` (no server paths)."""
        info = self.bundle.info
        models = {
            role: {k: v for k, v in meta.items() if k != "source"} for role, meta in info["models"].items()
        }
        keep = ("name", "version", "created", "package_version", "classes", "expansion", "dtype", "data")
        return {
            **{k: info.get(k) for k in keep},
            "fusion": _public(self.bundle.fusion),
            "no_tumour_class": self.bundle.no_tumour_class,
            "has_classifier": self.bundle.has_classifier,
            "analysis": self.bundle.analysis,
            "models": models,
            "backend": self.backend_name,
            "workers": self.workers,
            "threads_per_worker": self.threads,
        }


def _public(fusion: dict[str, Any] | None) -> dict[str, Any] | None:
    """The bundle's fusion record without ``fitted_on`` (it names a training folder)."""
    return None if fusion is None else {k: v for k, v in fusion.items() if k != "fitted_on"}
