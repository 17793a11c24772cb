"""``Analyzer``: where the tumour is, how large, what kind, how sure, and why, for slices/volumes.

Example:
    >>> from braintumor.inference import Analyzer
    >>> analyzer = Analyzer.from_bundle("bundles/t1ce", backend="onnx")   # doctest: +SKIP
    >>> result = analyzer.analyze("slice.png")                            # doctest: +SKIP
    >>> result.label, result.area_px, result.uncertainty                  # doctest: +SKIP
    >>> analyzer.analyze_files(["scans/"], "out", gradcam=True)           # doctest: +SKIP

Inputs are decoded and preprocessed in a background thread while the networks work; slices of
all inputs (volume slices and folder files alike) go through the networks in batches of
``batch_size``. A failed input becomes ``ok=False`` with its error; the others continue.
A ``cancelled`` check (a function or a :class:`threading.Event`) is read between batches; once it
is true the analysis raises :class:`AnalysisCancelled` (the server stops requests past their deadline).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.bundle.input_check import input_warning
from braintumor.bundle.load import Bundle, load_bundle, resolve_bundle_path
from braintumor.errors import BrainTumorError
from braintumor.extras import require
from braintumor.inference.backends import Backend, make_backend
from braintumor.inference.out_folder import check_out_dir, record_outputs
from braintumor.inference.outputs import write_input_files, write_tables
from braintumor.inference.pipeline import AnalysisSettings, SliceEngine
from braintumor.inference.prefetch import prefetch
from braintumor.inference.prepare import PreparedScan, prepare_scan
from braintumor.inference.report import ReportContext
from braintumor.inference.results import AnalysisResult, SliceResult, summarize
from braintumor.inference.sources import (
    InputItem,
    Inputs,
    Scan,
    collect_inputs,
    expand_inputs,
    read_scan,
    scan_from_array,
)
from braintumor.io_utils import prepare_out_dir, unique_name

Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool] | threading.Event


class AnalysisCancelled(Exception):
    """The caller's ``cancelled`` check turned true; the analysis stopped between two batches."""


def stop_if(cancelled: Cancelled | None) -> None:
    """Raise :class:`AnalysisCancelled` once ``cancelled`` (an Event or a function) is true."""
    if cancelled is None:
        return
    is_set = cancelled.is_set if isinstance(cancelled, threading.Event) else cancelled
    if is_set():
        raise AnalysisCancelled("the analysis was cancelled")


def _message(source: str, exc: Exception) -> str:
    if isinstance(exc, BrainTumorError):
        return str(exc)
    return f"{source}: unexpected {type(exc).__name__}: {exc}"


class Analyzer:
    """Segment -> tumour present? -> ROI crop -> classify -> explain, with one bundle (or, with a
    classify-only bundle, classify each whole slice -> explain; no masks).

    Args:
        bundle: a loaded bundle (:func:`~braintumor.bundle.load.load_bundle`).
        backend: a torch, ONNX or OpenVINO backend (:func:`~braintumor.inference.backends.make_backend`).
        settings: thresholds and batch size (defaults: the bundle's ``analysis`` section).
    """

    def __init__(self, bundle: Bundle, backend: Backend, settings: AnalysisSettings | None = None) -> None:
        self.bundle = bundle
        self.backend = backend
        self.settings = settings or AnalysisSettings.for_bundle(bundle)
        self.engine = SliceEngine(bundle, backend, self.settings)

    @classmethod
    def from_bundle(
        cls, path: str | Path | None = None, backend: str = "auto", precision: str = "auto", **settings: Any
    ) -> Analyzer:
        """Load a bundle (default: the packaged ``t1ce`` bundle) with backend ``auto`` (OpenVINO when
        installed, else torch), ``torch``, ``onnx`` or ``openvino``.

        ``settings`` override :class:`AnalysisSettings` fields (``min_area_px``, ``batch_size``...).
        """
        bundle = load_bundle(resolve_bundle_path(path), load_onnx=backend == "onnx")
        return cls(
            bundle, make_backend(bundle, backend, precision), AnalysisSettings.for_bundle(bundle, **settings)
        )

    # ------------------------------------------------------------------ public API

    def analyze(
        self,
        source: np.ndarray | str | Path,
        spacing: tuple[float, float] | None = None,
        gradcam: bool = False,
    ) -> AnalysisResult:
        """Analyse one input: an H×W(×3) array, an image file, a NIfTI file or a DICOM series folder.

        Bad input does not raise: the result has ``ok=False`` and ``error`` says why.
        """
        if isinstance(source, np.ndarray):
            try:
                scan = scan_from_array(source, spacing)
            except BrainTumorError as exc:
                return AnalysisResult.failed("<array>", str(exc))
            return self.analyze_scan(scan, gradcam)
        items = expand_inputs([source])
        if len(items) != 1:
            series = sum(item.dicom for item in items)
            what = f"{len(items)} inputs" + (f" ({series} DICOM series)" if series > 1 else "")
            return AnalysisResult.failed(str(source), f"{source}: holds {what}; use analyze_files")
        return self._run(self._decoded(items), None, gradcam, None)[0]

    def analyze_scan(
        self, scan: Scan, gradcam: bool = False, cancelled: Cancelled | None = None
    ) -> AnalysisResult:
        """Analyse an already decoded :class:`Scan` (from :func:`read_scan`) without reading it again.

        Raises:
            AnalysisCancelled: ``cancelled`` turned true (checked before each batch of slices).
        """
        return self._run([(0, scan)], None, gradcam, None, cancelled=cancelled)[0]

    def analyze_files(
        self,
        paths: Sequence[str | Path] | Inputs,
        out_dir: str | Path | None = None,
        gradcam: bool = False,
        progress: Progress | None = None,
        overwrite: bool = False,
        dicom_seg: bool = False,
        report: bool = False,
        identifiers: bool = False,
    ) -> list[AnalysisResult]:
        """Analyse files and folders (see :mod:`~braintumor.inference.sources`; or inputs already
        collected with :func:`~braintumor.inference.sources.collect_inputs`), in input order.

        With ``out_dir``, writes per-input files and ``analysis.csv``/``slices.csv`` there (see
        :mod:`~braintumor.inference.out_folder`); ``overwrite`` replaces an earlier analysis there;
        ``dicom_seg`` adds a DICOM SEG per DICOM input (:mod:`~braintumor.inference.dicom_seg`;
        other inputs, and every input of a classify-only bundle, get a note saying why they have
        none); ``report`` adds a printable ``<name>_report.html`` per input
        (:mod:`~braintumor.inference.report`), naming the input by its file or folder name only,
        unless ``identifiers`` adds its path and, for DICOM input, the patient's ID and name and the
        study date.

        Raises:
            OutputError: ``out_dir`` cannot be written, holds an input the analysis would write
                over, or (without ``overwrite``) holds the results of an earlier analysis.
            MissingExtraError: ``dicom_seg`` without ``highdicom`` (``pip install 'braintumor[dicom]'``).
        """
        inputs = paths if isinstance(paths, Inputs) else collect_inputs(list(paths))
        items = inputs.items
        out = Path(out_dir) if out_dir is not None else None
        if dicom_seg and out is not None and self.bundle.has_segmenter:
            require("highdicom", "dicom", "writing DICOM SEG files (dicom_seg, --dicom-seg)")
        if out is not None:
            prepare_out_dir(out)
            check_out_dir(out, items, overwrite)
            record_outputs(out, [], complete=False)
        context = (
            ReportContext.create(self.bundle, self.backend, self.settings, identifiers) if report else None
        )
        results = self._run(
            self._decoded(items), out, gradcam, progress, len(items), dicom_seg=dicom_seg, report=context
        )
        if out is not None:
            write_tables(results, out)
            record_outputs(out, [item.name for item in items], complete=True)
        return results

    # ------------------------------------------------------------------ internals

    def _decoded(self, items: list[InputItem]) -> Iterator[tuple[int, Scan | AnalysisResult]]:
        for order, item in enumerate(items):
            try:
                yield order, read_scan(item, self.settings.max_pixels, self.settings.max_slices)
            except Exception as exc:  # one bad input never stops the batch
                notes = [item.note] if item.note else []
                yield order, AnalysisResult.failed(item.source, _message(item.source, exc), notes)

    def _prepared(
        self, decoded: Iterator[tuple[int, Scan | AnalysisResult]] | list[tuple[int, Scan]]
    ) -> Iterator[tuple[int, PreparedScan | AnalysisResult]]:
        for order, scan in decoded:
            if isinstance(scan, AnalysisResult):
                yield order, scan
                continue
            try:
                prepared = prepare_scan(scan, self.bundle, order)
                if self.bundle.input_profile is not None:
                    prepared.input_check = input_warning(self.bundle.input_profile, scan.slices, scan.kind)
                yield order, prepared
            except Exception as exc:
                yield order, AnalysisResult.failed(scan.source, _message(scan.source, exc), scan.notes)

    def _run(
        self,
        decoded: Iterator[tuple[int, Scan | AnalysisResult]] | list[tuple[int, Scan]],
        out_dir: Path | None,
        gradcam: bool,
        progress: Progress | None,
        total: int = 1,
        cancelled: Cancelled | None = None,
        dicom_seg: bool = False,
        report: ReportContext | None = None,
    ) -> list[AnalysisResult]:
        stream = self._prepared(decoded)
        if self.settings.prefetch:
            stream = prefetch(stream, depth=2)
        finished: dict[int, AnalysisResult] = {}
        names: set[str] = set()
        partial: dict[int, list[SliceResult | None]] = {}
        pending: list[tuple[PreparedScan, int]] = []

        def done(order: int, result: AnalysisResult) -> None:
            finished[order] = result
            if progress:
                progress(len(finished), total)

        def flush(count: int) -> None:
            stop_if(cancelled)
            batch, pending[:] = pending[:count], pending[count:]
            try:
                outputs: list[SliceResult | None] = list(self.engine.run(batch, gradcam))
            except Exception as exc:  # a network failure fails the inputs of this batch only
                outputs = [None] * len(batch)
                for p, _ in batch:
                    if partial.pop(p.order, None) is not None:
                        failed = AnalysisResult.failed(
                            p.scan.source, _message(p.scan.source, exc), p.scan.notes
                        )
                        done(p.order, failed)
            for (p, i), res in zip(batch, outputs, strict=True):
                if res is None or p.order not in partial:
                    continue
                partial[p.order][i] = res
                if all(r is not None for r in partial[p.order]):
                    slices = [r for r in partial.pop(p.order) if r is not None]
                    done(p.order, self._finish(p, slices, out_dir, names, dicom_seg, report))

        for order, item in stream:
            if isinstance(item, AnalysisResult):
                done(order, item)
                continue
            if item.scan.kind == "volume" and self._per_volume:
                done(order, self._run_volume(item, out_dir, names, gradcam, cancelled, dicom_seg, report))
                continue
            partial[order] = [None] * len(item.blank)
            pending.extend((item, i) for i in range(len(item.blank)))
            while len(pending) >= self.settings.batch_size:
                flush(self.settings.batch_size)
        while pending:
            flush(self.settings.batch_size)
        return [finished[k] for k in sorted(finished)]

    @property
    def _per_volume(self) -> bool:
        """Whether volumes are post-processed as a whole (the run was scored per patient)."""
        s = self.settings
        return s.postprocess_scope == "patient" and (s.largest_component or s.fill_holes)

    def _run_volume(
        self,
        prepared: PreparedScan,
        out_dir: Path | None,
        names: set[str],
        gradcam: bool,
        cancelled: Cancelled | None,
        dicom_seg: bool,
        report: ReportContext | None,
    ) -> AnalysisResult:
        try:
            slices = self.engine.run_volume(prepared, gradcam, lambda: stop_if(cancelled))
        except AnalysisCancelled:
            raise
        except Exception as exc:  # a network failure fails this input only
            return AnalysisResult.failed(
                prepared.scan.source, _message(prepared.scan.source, exc), prepared.scan.notes
            )
        return self._finish(prepared, slices, out_dir, names, dicom_seg, report)

    def _finish(
        self,
        prepared: PreparedScan,
        slices: list[SliceResult],
        out_dir: Path | None,
        names: set[str],
        dicom_seg: bool = False,
        report: ReportContext | None = None,
    ) -> AnalysisResult:
        scan = prepared.scan
        name = unique_name(scan.name, names)
        spacing: tuple[float, ...] | None = scan.spacing
        if spacing and scan.kind == "volume" and scan.slice_spacing:
            spacing = (*spacing, scan.slice_spacing)
        result = AnalysisResult(
            scan.source,
            kind=scan.kind,
            name=name,
            shape=tuple(int(v) for v in scan.slices.shape),
            spacing_mm=spacing,
            notes=list(scan.notes),
        )
        whole = self.bundle.classifies_whole_slices
        summarize(result, slices, self.bundle.no_tumour_class, scan.slice_spacing, by_majority=whole)
        if prepared.input_check is not None:
            result.input_distance, result.warning = prepared.input_check
        if out_dir is not None:
            try:
                write_input_files(
                    scan, result, out_dir, dicom_seg=dicom_seg, report=report, segmented=not whole
                )
            except Exception as exc:
                return AnalysisResult.failed(scan.source, _message(scan.source, exc), scan.notes)
        return result
