"""The JSON answer of ``POST /api/analyze``: the analysis result plus PNG layers as data URLs.

Shape (all numbers plain JSON; ``None`` where unknown)::

    {"input": label, "format": "png", "kind": "image" | "volume", "class": ..., "probabilities": {...},
     "tumour": bool, "area_px": int, "area_mm2": float, "bbox": [r0, r1, c0, c1], "uncertainty": {...},
     ... (every field of AnalysisResult.to_dict() but "outputs"),
     "slice_index": k,                  # the slice to show first (largest tumour, else the middle)
     "images": {image, outline, fill, gradcam, overlay, mask} | None,   # images: that of the input
     "slices": [{... SliceResult.to_dict(), "images": {...} | None}],  # volumes: one per slice
     "mask_nifti": "data:application/gzip;base64,..." | None,          # NIfTI volumes
     "model": {"name", "version"}, "elapsed_ms": float}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from braintumor.inference.analyzer import Cancelled, stop_if
from braintumor.inference.outputs import write_nifti_mask
from braintumor.inference.results import AnalysisResult
from braintumor.inference.sources import Scan
from braintumor.serve.render import data_url, slice_layers

ImagesMode = Literal["all", "tumour", "none"]


def first_slice(result: AnalysisResult) -> int:
    """Index of the slice with the largest tumour, else the middle slice (0 for an image)."""
    hits = [s for s in result.slices if s.tumour]
    if hits:
        return max(hits, key=lambda s: s.area_px).index
    return len(result.slices) // 2


def mask_nifti_url(scan: Scan, result: AnalysisResult, folder: Path) -> str | None:
    """The predicted mask volume as a gzipped NIfTI data URL (same shape and affine as the input)."""
    if scan.nifti is None:
        return None
    masks = np.stack(
        [s.mask if s.mask is not None else np.zeros(scan.shape, np.uint8) for s in result.slices]
    )
    path = Path(write_nifti_mask(scan, masks, folder / "mask.nii.gz"))
    return data_url(path.read_bytes(), "application/gzip")


def analysis_json(
    result: AnalysisResult,
    scan: Scan,
    label: str,
    fmt: str,
    images: ImagesMode,
    mask_nifti: str | None,
    cancelled: Cancelled | None = None,
) -> dict[str, Any]:
    """The response body for one analysed upload (see the module doc).

    Raises:
        AnalysisCancelled: ``cancelled`` turned true (checked before each volume slice's layers).
    """
    body = result.to_dict()
    body.pop("outputs", None)
    body.update(input=label, name=label, format=fmt, slice_index=first_slice(result), mask_nifti=mask_nifti)
    body["images"] = None
    if scan.kind == "image":
        body["slices"][0].pop("outputs", None)
        if images != "none":
            body["images"] = slice_layers(scan.slices[0], result.slices[0], with_overlay=True)
        return body
    for entry, s in zip(body["slices"], result.slices, strict=True):
        stop_if(cancelled)
        entry.pop("outputs", None)
        wanted = images == "all" or (images == "tumour" and s.tumour)
        entry["images"] = slice_layers(scan.slices[s.index], s, with_overlay=s.tumour) if wanted else None
    return body
