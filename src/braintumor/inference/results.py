"""Typed analysis results (per slice and per input) and the per-volume summary.

``to_dict()`` gives JSON-safe dicts: plain Python numbers, ``None`` for unknown values, the class
under the key ``class``. Masks and heat maps stay on the objects (``mask``, ``heatmap``) only.

With a segmentation-only bundle a tumour's class is :data:`TUMOUR_LABEL` (``"tumour"``), its
``probabilities`` are empty and its classification uncertainty is ``None``. With a fused bundle
``probabilities`` are the fused ones and ``cnn_probabilities`` the classifier's alone (empty
otherwise). With a classify-only bundle (a whole-slice classifier, no segmenter) ``probabilities``
cover all the classifier's classes, the no-tumour class included; no mask is made, so a tumour's
``area_px``, ``area_mm2`` and ``bbox`` are ``None`` (unknown) and its segmentation uncertainty too.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from braintumor.runtime.fusion import consensus

Box = tuple[int, int, int, int]
TUMOUR_LABEL = "tumour"
"""Class of a tumour found by a bundle without a classifier (segmentation only)."""
RESEARCH_USE = "Research use only, not for diagnosis."
"""The research-use statement every analysis output meant for people carries (the HTML report;
the web page says the same)."""


def _num(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), digits)


@dataclass
class Uncertainty:
    """Flip-TTA (and ensemble) uncertainty; None where nothing was compared.

    Attributes:
        segmentation: mean over the predicted mask of the across-flip variance of the tumour
            probability (0 = all flips agree; at most 0.25); None without flip TTA.
        classification: variance of the predicted class's probability over the flips and the
            ensemble's members; None for one classifier without flip TTA.
    """

    segmentation: float | None = None
    classification: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"segmentation": _num(self.segmentation), "classification": _num(self.classification)}


@dataclass
class SliceResult:
    """Analysis of one 2D slice (``index`` is its position in the volume; 0 for images).

    ``bbox`` is ``(row0, row1, col0, col1)``, half-open, in the slice's own pixels; ``mask`` is the
    post-processed H×W uint8 {0,1} prediction (None for blank slices and without a segmenter) and
    ``heatmap`` the H×W Grad-CAM in [0, 1]. ``area_px`` is None for a tumour found without a mask
    (classify-only bundles).
    """

    index: int
    tumour: bool = False
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    gate_probabilities: dict[str, float] = field(default_factory=dict)
    cnn_probabilities: dict[str, float] = field(default_factory=dict)
    area_px: int | None = 0
    area_mm2: float | None = None
    bbox: Box | None = None
    uncertainty: Uncertainty = field(default_factory=Uncertainty)
    skipped: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False)
    heatmap: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tumour": self.tumour,
            "class": self.label,
            "probabilities": {k: _num(v) for k, v in self.probabilities.items()},
            "gate_probabilities": {k: _num(v) for k, v in self.gate_probabilities.items()},
            "cnn_probabilities": {k: _num(v) for k, v in self.cnn_probabilities.items()},
            "area_px": self.area_px,
            "area_mm2": _num(self.area_mm2, 3),
            "bbox": list(self.bbox) if self.bbox else None,
            "uncertainty": self.uncertainty.to_dict(),
            "skipped": self.skipped,
            "outputs": dict(self.outputs),
        }


@dataclass
class AnalysisResult:
    """Analysis of one input (an image or a volume); ``ok=False`` with ``error`` when it failed.

    For volumes, ``area_px`` counts tumour pixels over all slices, ``volume_mm3`` is that volume
    in mm³ when the spacing is known, ``label`` is the probability-weighted class (mean
    probabilities over tumour slices; the most frequent slice class when there are no class
    probabilities, as with segmentation-only bundles, or when they include the no-tumour class, as
    with classify-only bundles) and ``majority_label`` the most frequent slice class; ``area_px``
    is None when a tumour slice has no mask (classify-only bundles). ``warning`` is non-empty when
    the input does not look like the bundle's training slices (``input_distance`` over the
    bundle's threshold; :mod:`~braintumor.bundle.input_check`).
    ``notes`` are other things worth knowing: the input is one of several DICOM series of a folder,
    an output that could not be written for it (a DICOM SEG of a non-DICOM input...).
    """

    input: str
    ok: bool = True
    error: str = ""
    kind: str = "image"
    name: str = ""
    shape: tuple[int, ...] | None = None
    spacing_mm: tuple[float, ...] | None = None
    tumour: bool | None = None
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    gate_probabilities: dict[str, float] = field(default_factory=dict)
    cnn_probabilities: dict[str, float] = field(default_factory=dict)
    area_px: int | None = None
    area_mm2: float | None = None
    volume_mm3: float | None = None
    bbox: Box | None = None
    majority_label: str | None = None
    tumour_slices: list[int] = field(default_factory=list)
    uncertainty: Uncertainty = field(default_factory=Uncertainty)
    slices: list[SliceResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    warning: str = ""
    input_distance: float | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, source: str, error: str, notes: list[str] | None = None) -> AnalysisResult:
        return cls(source, ok=False, error=error, notes=list(notes or []))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (one entry of the CLI's ``results`` list)."""
        return {
            "input": self.input,
            "ok": self.ok,
            "error": self.error,
            "kind": self.kind,
            "name": self.name,
            "shape": list(self.shape) if self.shape else None,
            "spacing_mm": [_num(v) for v in self.spacing_mm] if self.spacing_mm else None,
            "tumour": self.tumour,
            "class": self.label,
            "probabilities": {k: _num(v) for k, v in self.probabilities.items()},
            "gate_probabilities": {k: _num(v) for k, v in self.gate_probabilities.items()},
            "cnn_probabilities": {k: _num(v) for k, v in self.cnn_probabilities.items()},
            "area_px": self.area_px,
            "area_mm2": _num(self.area_mm2, 3),
            "volume_mm3": _num(self.volume_mm3, 3),
            "bbox": list(self.bbox) if self.bbox else None,
            "majority_class": self.majority_label,
            "tumour_slices": list(self.tumour_slices),
            "uncertainty": self.uncertainty.to_dict(),
            "warning": self.warning,
            "input_distance": _num(self.input_distance, 3),
            "notes": list(self.notes),
            "outputs": dict(self.outputs),
            "slices": [s.to_dict() for s in self.slices],
        }


def _mean_dict(dicts: list[dict[str, float]]) -> dict[str, float]:
    if not dicts:
        return {}
    keys = list(dicts[0])
    votes = consensus(np.array([[d[k] for k in keys] for d in dicts]))
    return {k: float(v) for k, v in zip(keys, votes, strict=True)}


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _union(boxes: list[Box]) -> Box | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def summarize(
    result: AnalysisResult,
    slices: list[SliceResult],
    no_tumour: str,
    slice_spacing: float | None,
    by_majority: bool = False,
) -> AnalysisResult:
    """Fill ``result``'s input-level fields from its slices (one slice for an image).

    ``by_majority`` labels a volume with its tumour slices' most frequent class (ties: the higher
    mean probability) rather than the argmax of their mean probabilities: for whole-slice
    classifiers, whose probabilities include the no-tumour class."""
    result.slices = slices
    if result.kind == "image":
        s = slices[0]
        result.tumour, result.label, result.area_px, result.area_mm2 = (
            s.tumour,
            s.label,
            s.area_px,
            s.area_mm2,
        )
        result.probabilities, result.gate_probabilities = s.probabilities, s.gate_probabilities
        result.cnn_probabilities = s.cnn_probabilities
        result.bbox, result.uncertainty = s.bbox, s.uncertainty
        result.tumour_slices = [0] if s.tumour else []
        return result
    hits = [s for s in slices if s.tumour]
    analysed = [s for s in slices if not s.skipped]
    result.tumour = bool(hits)
    result.tumour_slices = [s.index for s in hits]
    pixels = [s.area_px for s in hits]
    result.area_px = int(sum(a for a in pixels if a is not None)) if None not in pixels else None
    areas = [s.area_mm2 for s in hits]
    if hits and all(a is not None for a in areas):
        result.area_mm2 = float(sum(a for a in areas if a is not None))
        result.volume_mm3 = result.area_mm2 * slice_spacing if slice_spacing else None
    elif not hits and result.spacing_mm:
        result.area_mm2 = result.volume_mm3 = 0.0
    result.gate_probabilities = _mean_dict([s.gate_probabilities for s in analysed if s.gate_probabilities])
    if hits:
        result.probabilities = _mean_dict([s.probabilities for s in hits if s.probabilities])
        result.cnn_probabilities = _mean_dict([s.cnn_probabilities for s in hits if s.cnn_probabilities])
        counts = Counter(s.label for s in hits)
        mean = result.probabilities
        if by_majority:
            result.label = max(counts, key=lambda k: (counts[k], mean.get(k or "", 0.0)))
        elif mean:
            result.label = max(mean, key=lambda k: mean[k])
        else:  # no classifier: every hit is TUMOUR_LABEL
            result.label = max(counts, key=lambda k: counts[k])
        result.majority_label = max(counts, key=lambda k: (counts[k], k == result.label))
    else:
        result.label = result.majority_label = no_tumour
        # the gate's (tumour-free slices carry them as their probabilities), or the whole-slice classifier's
        result.probabilities = _mean_dict([s.probabilities for s in analysed if s.probabilities])
    result.bbox = _union([s.bbox for s in hits if s.bbox])
    result.uncertainty = Uncertainty(
        _mean([s.uncertainty.segmentation for s in hits]), _mean([s.uncertainty.classification for s in hits])
    )
    return result
