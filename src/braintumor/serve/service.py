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
import dataclasses
import json
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from braintumor.bundle.load import Bundle, load_bundle, resolve_bundle_path
from braintumor.errors import DataError, MissingExtraError
from braintumor.inference.analyzer import AnalysisCancelled, Analyzer, stop_if
from braintumor.inference.backends import make_backend
from braintumor.inference.outputs import no_mask_note
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.report import ReportContext
from braintumor.inference.sources import InputItem, Scan, collect_inputs, read_scan
from braintumor.io_utils import safe_stem
from braintumor.serve.archive import ZipLimits, check_sizes, extract_zip
from braintumor.serve.errors import ApiError, status_for
from braintumor.serve.preflight import check_size
from braintumor.serve.response import ImagesMode, analysis_json, dicom_seg_url, mask_nifti_url, report_url
from braintumor.serve.settings import ServeSettings
from braintumor.serve.sniff import UploadFormat, sniff
from braintumor.serve.upload import Upload

log = logging.getLogger("braintumor.serve")


MAX_ZIP_INPUTS = 64  # inputs (series, slice folders, images) of one zip upload


@dataclass(frozen=True)
class _Scrub:
    """Replaces server paths in a message: ``root`` (the upload file, or the folder a zip went to)
    by the client's label, the request's temporary folder ``tmp`` by ``<upload>``."""

    root: Path
    tmp: Path
    label: str

    def __call__(self, message: str) -> str:
        text = message.replace(str(self.root), self.label).replace(str(self.tmp), "<upload>")
        return text.replace("<array>", self.label)


@dataclass(frozen=True)
class _Job:
    """One request's upload, its format and options, and its cancel event."""

    upload: Upload
    fmt: UploadFormat
    gradcam: bool
    images: ImagesMode
    dicom_seg: bool
    cancel: threading.Event
    report: bool = True


def _format_of(item: InputItem) -> str:
    """The format of a zip input, from its first file's content ('dicom' for a series)."""
    if item.dicom:
        return "dicom"
    if not item.files:
        return "folder"
    try:
        with open(item.files[0], "rb") as fh:
            return sniff(fh.read(65536)).name
    except (ApiError, OSError):
        return item.files[0].suffix.lstrip(".").lower() or "unknown"


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
        context = ReportContext.create(self.bundle, backend, analysis, identifiers=False)
        self.report_context = dataclasses.replace(context, bundle=_public_info(context.bundle))
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

    async def analyze(
        self, upload: Upload, gradcam: bool, images: ImagesMode, dicom_seg: bool = True, report: bool = True
    ) -> bytes:
        """Sniff the format here, then decode and analyse in a worker; returns the JSON body.

        When the caller stops waiting (its deadline cancels this coroutine), the job is cancelled too.
        """
        fmt = sniff(upload.data)
        job = _Job(upload, fmt, gradcam, images, dicom_seg, threading.Event(), report)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._job, job)
        try:
            return await future
        finally:
            job.cancel.set()  # answered, timed out or abandoned: nothing more to compute for this request

    def _job(self, job: _Job) -> bytes:
        start = time.perf_counter()
        s = self.settings
        check_size(job.fmt, job.upload.data, job.upload.label, s.max_pixels, s.max_voxels)
        analyzer = self._idle.get()
        try:
            with tempfile.TemporaryDirectory(prefix="braintumor-serve-") as tmp:
                if job.fmt.name == "zip":
                    body = self._analyse_zip(analyzer, job, Path(tmp))
                else:
                    body = self._analyse(analyzer, job, Path(tmp))
        except AnalysisCancelled:
            log.warning("stopped analysing %s after %.1f s: its request timed out (timeout %g s)",
                        job.upload.label, time.perf_counter() - start, s.timeout_s)  # fmt: skip
            raise ApiError(504, "the analysis was stopped: its request timed out") from None
        finally:
            self._idle.put(analyzer)
        body["model"] = self.model_ref()
        body["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 1)
        return json.dumps(body).encode()

    def _analyse(self, analyzer: Analyzer, job: _Job, tmp: Path) -> dict[str, Any]:
        """Decode, analyse and render one upload; :class:`AnalysisCancelled` once ``job.cancel`` is set."""
        label = job.upload.label
        path = tmp / f"upload{job.fmt.suffix}"
        path.write_bytes(job.upload.data)
        stop_if(job.cancel)
        scrub = _Scrub(path, tmp, label)
        scan = self._read(InputItem(str(path), (path,), dicom=job.fmt.name == "dicom"), scrub, job.fmt.name)
        return self._render(analyzer, scan, job, scrub, label, job.fmt.name, self.settings.max_slice_images)

    def _render(
        self, analyzer: Analyzer, scan: Scan, job: _Job, scrub: _Scrub, label: str, fmt: str, cap: int
    ) -> dict[str, Any]:
        """Analyse a decoded scan and build its body (mask NIfTI, DICOM SEG, PNG layers)."""
        result = analyzer.analyze_scan(scan, job.gradcam, cancelled=job.cancel)  # decoded once, by _read
        if not result.ok:
            message = scrub(result.error)
            status = 500 if ": unexpected " in message else status_for(message)
            if status == 500:
                log.error("analysis of %s failed: %s", label, message)
            raise ApiError(status, message)
        out = scrub.tmp / "out"
        out.mkdir(exist_ok=True)
        segmented = self.bundle.has_segmenter
        nifti, seg, why = None, None, ""
        if segmented:
            nifti = mask_nifti_url(scan, result, out)
            seg, why = dicom_seg_url(scan, result, out) if job.dicom_seg else (None, "")
        elif job.dicom_seg and scan.dicom is not None:
            why = no_mask_note(scan.source, "DICOM SEG")
        if why:
            result.notes.append(why)
        stop_if(job.cancel)
        html = report_url(scan, result, self.report_context, out, scrub) if job.report else None
        body = analysis_json(
            result, scan, label, fmt, job.images, nifti, job.cancel, seg, cap, html, segmented
        )
        body["notes"] = [scrub(note) for note in body["notes"]]
        return body

    def _analyse_zip(self, analyzer: Analyzer, job: _Job, tmp: Path) -> dict[str, Any]:
        """Extract a zip (:mod:`~braintumor.serve.archive`) and analyse each input in it, as
        ``braintumor analyze`` does a folder: one result per DICOM series, slice folder or image."""
        s, label = self.settings, job.upload.label
        root = tmp / "in" / safe_stem(label.removesuffix(".zip").removesuffix(".ZIP"), default="upload")
        limits = ZipLimits(s.max_zip_members, s.max_zip_bytes)
        files = extract_zip(job.upload.data, label, root, limits, job.cancel)
        check_sizes(files, root, label, s.max_pixels, s.max_voxels)
        items = collect_inputs([root]).items
        if len(items) > MAX_ZIP_INPUTS:
            raise ApiError(
                413, f"{label}: the zip holds {len(items)} inputs (DICOM series, slice folders, images); "
                f"the limit is {MAX_ZIP_INPUTS} per upload; split it over several zips",
            )  # fmt: skip
        scrub = _Scrub(root, tmp, label)
        cap = max(1, s.max_slice_images // len(items))
        results = [self._zip_entry(analyzer, item, job, scrub, cap) for item in items]
        if not any(r["ok"] for r in results):
            first = results[0]
            more = f" (and {len(results) - 1} more inputs of the zip failed)" if len(results) > 1 else ""
            raise ApiError(first["status"], f"{first['error']}{more}")
        return {"input": label, "name": label, "format": "zip", "kind": "archive", "results": results}

    def _zip_entry(
        self, analyzer: Analyzer, item: InputItem, job: _Job, scrub: _Scrub, cap: int
    ) -> dict[str, Any]:
        """One input of a zip: its body, or ``{input, name, ok: false, error, status}``."""
        shown = scrub(item.source)
        stop_if(job.cancel)
        fmt = _format_of(item)
        try:
            scan = self._read(item, scrub, fmt, zipped=True)
            body = self._render(analyzer, scan, job, scrub, shown, fmt, cap)
        except ApiError as exc:
            return {
                "input": shown,
                "name": item.name,
                "ok": False,
                "error": exc.message,
                "status": exc.status,
            }
        body["name"] = item.name
        return body

    def _read(self, item: InputItem, scrub: _Scrub, fmt: str, zipped: bool = False) -> Scan:
        label = scrub.label
        try:
            s = self.settings
            return read_scan(item, s.max_pixels, s.max_slices, s.max_voxels)
        except MissingExtraError as exc:  # 501: this server cannot read the format (pydicom absent)
            raise ApiError(501, scrub(str(exc))) from None
        except DataError as exc:
            message = scrub(str(exc)) if zipped else f"{label}: {scrub(exc.problem)}"
            raise ApiError(status_for(message), message) from None
        except Exception as exc:  # a decoder failing in a way the readers do not expect
            where = scrub(item.source) if zipped else label
            message = scrub(f"{where}: cannot decode the {fmt} file ({type(exc).__name__}: {exc})")
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
            "has_segmenter": self.bundle.has_segmenter,
            "analysis": self.bundle.analysis,
            "models": models,
            "backend": self.backend_name,
            "workers": self.workers,
            "threads_per_worker": self.threads,
        }


def _public_info(info: dict[str, Any]) -> dict[str, Any]:
    """``bundle.json`` as the server's reports show it: without the folders the models were
    trained in, nor the one the fusion forest was fitted on (server paths)."""
    models = info.get("models") or {}
    return {
        **info,
        "models": {role: {k: v for k, v in m.items() if k != "source"} for role, m in models.items()},
        "fusion": _public(info.get("fusion")),
    }


def _public(fusion: dict[str, Any] | None) -> dict[str, Any] | None:
    """The bundle's fusion record without ``fitted_on`` (it names a training folder)."""
    return None if fusion is None else {k: v for k, v in fusion.items() if k != "fitted_on"}
