"""The JSON answer of ``POST /api/analyze``: the analysis result plus PNG layers as data URLs.

Shape (all numbers plain JSON; ``None`` where unknown)::

    {"input": label, "format": "png", "kind": "image" | "volume", "class": ..., "probabilities": {...},
     "tumour": bool, "area_px": int, "area_mm2": float, "bbox": [r0, r1, c0, c1], "uncertainty": {...},
     ... (every field of AnalysisResult.to_dict() but "outputs"),
     "slice_index": k,                  # the slice to show first (largest tumour, else the middle)
     "images": {image, outline, fill, gradcam, overlay, mask} | None,   # images: that of the input
     "slices": [{... SliceResult.to_dict(), "images": {...} | None}],  # volumes: one per slice
     "images_omitted": int,             # volume slices left without images by the response's cap
     "mask_nifti": "data:application/gzip;base64,..." | None,          # volumes (NIfTI, DICOM, slices)
     "dicom_seg": "data:application/dicom;base64,..." | None,          # DICOM input with a tumour
     "report": "data:text/html;base64,..." | None,     # the input's HTML report (unless report=false)
     "model": {"name", "version"}, "elapsed_ms": float}

A zip upload answers ``{"input": label, "format": "zip", "kind": "archive", "results": [body, ...],
"model", "elapsed_ms"}``: one body as above per input found in it (a DICOM series, a folder of
numbered slices, an image), or ``{"input", "ok": false, "error", "status"}`` for one that failed.

A classify-only bundle (a whole-slice classifier, no segmenter) makes no mask: ``area_px`` and
``bbox`` of its tumours are None, the ``outline``, ``fill`` and ``mask`` layers are None, and
``mask_nifti`` and ``dicom_seg`` too (a DICOM input gets a note saying why).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from braintumor.errors import MissingExtraError
from braintumor.inference.analyzer import Cancelled, stop_if
from braintumor.inference.dicom_seg import seg_refusal, write_dicom_seg
from braintumor.inference.outputs import write_nifti_mask, write_slice_files
from braintumor.inference.report import MAX_FIGURE_SLICES, ReportContext, report_html
from braintumor.inference.results import AnalysisResult
from braintumor.inference.sources import Scan
from braintumor.serve.render import data_url, slice_layers

ImagesMode = Literal["all", "tumour", "none"]


def first_slice(result: AnalysisResult) -> int:
    """Index of the slice with the largest tumour, else the middle slice (0 for an image)."""
    hits = [s for s in result.slices if s.tumour]
    if hits:
        return max(hits, key=lambda s: s.area_px or 0).index
    return len(result.slices) // 2


SEG_ERRORS = (ValueError, AttributeError, TypeError, KeyError, NotImplementedError)  # highdicom's refusals


def _masks(scan: Scan, result: AnalysisResult) -> np.ndarray:
    """N×H×W uint8 {0,1}: the predicted masks in slice order (zeros for skipped slices)."""
    return np.stack([s.mask if s.mask is not None else np.zeros(scan.shape, np.uint8) for s in result.slices])


def mask_nifti_url(scan: Scan, result: AnalysisResult, folder: Path) -> str | None:
    """The predicted mask volume of a volume input as a gzipped NIfTI data URL: in the input's shape
    and affine for NIfTI, with the DICOM headers' affine for a series (see
    :func:`~braintumor.inference.outputs.write_nifti_mask`); None for a single image."""
    if scan.kind != "volume":
        return None
    path = Path(write_nifti_mask(scan, _masks(scan, result), folder / "mask.nii.gz"))
    return data_url(path.read_bytes(), "application/gzip")


def dicom_seg_url(scan: Scan, result: AnalysisResult, folder: Path) -> tuple[str | None, str]:
    """(the DICOM SEG of a DICOM input as a data URL, or None; why there is none, or '').

    Non-DICOM input gets (None, ''): it never asked for one. A DICOM input without a tumour, or
    whose headers highdicom cannot use, or on a server without highdicom, gets the reason.
    """
    if scan.dicom is None:
        return None, ""
    masks = _masks(scan, result)
    refusal = seg_refusal(scan, masks)
    if refusal is not None:
        return None, refusal
    try:
        path = Path(write_dicom_seg(scan, masks, result.label, folder / "seg.dcm"))
    except MissingExtraError as exc:
        return None, f"{scan.source}: no DICOM SEG written: {exc}"
    except SEG_ERRORS as exc:
        return None, f"{scan.source}: no DICOM SEG written: {exc}"
    return data_url(path.read_bytes(), "application/dicom"), ""


def report_url(
    scan: Scan, result: AnalysisResult, context: ReportContext, folder: Path, scrub: Callable[[str], str]
) -> str:
    """The input's self-contained HTML report (:func:`~braintumor.inference.report.report_html`,
    as ``braintumor analyze --report`` writes it) as a data URL. Its figures (the overlays and
    Grad-CAM maps of the image, or of a volume's largest tumour slices) are written to ``folder``
    first; ``scrub`` turns server paths in the input's name and notes into the client's label.
    ``context`` should not carry identifiers: the report names the input by its label only."""
    if scan.kind == "image":
        s = result.slices[0]
        write_slice_files(scan.slices[0], s, folder, "report")
        result.outputs.update(s.outputs)
    else:
        hits = sorted((s for s in result.slices if s.tumour), key=lambda s: -(s.area_px or 0))
        hits = hits[:MAX_FIGURE_SLICES]
        for s in hits:
            write_slice_files(scan.slices[s.index], s, folder, f"report_s{s.index:03d}")
    shown = dataclasses.replace(scan, source=scrub(scan.source))
    public = dataclasses.replace(result, notes=[scrub(n) for n in result.notes])
    return data_url(report_html(shown, public, context).encode("utf-8"), "text/html")


def image_slices(result: AnalysisResult, images: ImagesMode, cap: int) -> set[int]:
    """Indices of the volume slices that get PNG layers: those ``images`` asks for, at most ``cap``:
    then the slice shown first, the other tumour slices nearest to it, and evenly spaced others."""
    wanted = [s.index for s in result.slices if images == "all" or (images == "tumour" and s.tumour)]
    if len(wanted) <= cap:
        return set(wanted)
    first = first_slice(result)
    tumour = {s.index for s in result.slices if s.tumour}
    chosen = sorted((i for i in wanted if i in tumour), key=lambda i: (abs(i - first), i))[:cap]
    if first in wanted and first not in chosen:
        chosen = [first, *chosen[: cap - 1]]
    others = [i for i in wanted if i not in chosen]
    room = cap - len(chosen)
    if room > 0 and others:
        picks = np.linspace(0, len(others) - 1, num=min(room, len(others))).round().astype(int)
        chosen += [others[k] for k in sorted(set(picks.tolist()))]
    return set(chosen)


def analysis_json(
    result: AnalysisResult,
    scan: Scan,
    label: str,
    fmt: str,
    images: ImagesMode,
    mask_nifti: str | None,
    cancelled: Cancelled | None = None,
    dicom_seg: str | None = None,
    max_slice_images: int | None = None,
    report: str | None = None,
    segmented: bool = True,
) -> dict[str, Any]:
    """The response body for one analysed upload (see the module doc); ``max_slice_images`` caps
    the volume slices that get PNG layers (:func:`image_slices`; None: no cap); ``segmented=False``
    (a classify-only bundle) leaves out the mask layers.

    Raises:
        AnalysisCancelled: ``cancelled`` turned true (checked before each volume slice's layers).
    """
    body = result.to_dict()
    body.pop("outputs", None)
    body.update(input=label, name=label, format=fmt, slice_index=first_slice(result), mask_nifti=mask_nifti)
    body.update(dicom_seg=dicom_seg, report=report, images=None, images_omitted=0)
    if scan.kind == "image":
        body["slices"][0].pop("outputs", None)
        if images != "none":
            body["images"] = slice_layers(scan.slices[0], result.slices[0], True, segmented)
        return body
    shown = image_slices(result, images, len(result.slices) if max_slice_images is None else max_slice_images)
    body["images_omitted"] = len(image_slices(result, images, len(result.slices))) - len(shown)
    for entry, s in zip(body["slices"], result.slices, strict=True):
        stop_if(cancelled)
        entry.pop("outputs", None)
        wanted = s.index in shown
        entry["images"] = slice_layers(scan.slices[s.index], s, s.tumour, segmented) if wanted else None
    return body
