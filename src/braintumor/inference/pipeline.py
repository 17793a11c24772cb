"""One batch of slices through segment -> gate -> ROI crop -> classify -> explain.

Slices from any number of inputs are processed together: each network sees one batched call
holding every flipped TTA copy. Per slice:

1. tumour probability = mean over flips of sigmoid(segmenter); mask = mean > 0.5, mapped back to
   the slice's own size (undoing pad + resize), then largest component + fill holes (if enabled);
2. tumour present = mask area >= ``min_area_px`` and, with a gate, P(no tumour) < ``gate_threshold``;
3. the ROI (mask box widened by the bundle's expansion) is cropped from the natively normalised
   slice with :func:`braintumor.data.roi.crop_roi`, as the training cache cropped, and classified;
   the ROI classifier's no-tumour class (if any) is dropped and the rest renormalised;
4. with a fused bundle (``fusion`` in bundle.json), the region features of the tumour (raw slice
   pixels, as read for training, and the predicted mask) go through the bundle's forest, and
   the probabilities become ``w`` × classifier + (1 − ``w``) × forest over the same classes; the
   label follows them and the classifier's own stay in ``cnn_probabilities``;
5. uncertainty from the classifier's flip variance; Grad-CAM of the classifier's predicted class
   on request.

Without a classifier (segmentation-only bundles) steps 3-5 are skipped: a tumour slice is labelled
:data:`~braintumor.inference.results.TUMOUR_LABEL` with empty ``probabilities`` and no
classification uncertainty, and Grad-CAM (which explains the classifier) is skipped with one
warning per engine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from braintumor.data.readers import DEFAULT_MAX_PIXELS
from braintumor.data.roi import coord_channels, crop_roi, foreground_box
from braintumor.errors import ConfigError, DataError
from braintumor.evaluation.postprocess import postprocess
from braintumor.inference.backends import Backend
from braintumor.inference.bundle import Bundle
from braintumor.inference.bundle_checks import no_tumour_class
from braintumor.inference.gradcam import GradCamExplainer, paste_heatmap
from braintumor.inference.predict import mask_to_original
from braintumor.inference.prepare import PreparedScan
from braintumor.inference.results import TUMOUR_LABEL, SliceResult
from braintumor.inference.sources import DEFAULT_MAX_SLICES
from braintumor.runtime.tta import FLIPS, class_variance, mask_variance, tta_probabilities


@dataclass(frozen=True)
class AnalysisSettings:
    """Decision thresholds and throughput knobs (defaults come from the bundle's ``analysis``)."""

    min_area_px: int = 10
    gate_threshold: float = 0.5
    largest_component: bool = True
    fill_holes: bool = True
    tta_flips: tuple[str, ...] = ("none", "h")
    batch_size: int = 16
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_slices: int = DEFAULT_MAX_SLICES
    prefetch: bool = True

    def __post_init__(self) -> None:
        if self.min_area_px < 0:
            raise ConfigError(f"min_area_px={self.min_area_px}; expected >= 0 pixels")
        if not 0 < self.gate_threshold <= 1:
            raise ConfigError(f"gate_threshold={self.gate_threshold}; expected a probability in (0, 1]")
        if not self.tta_flips or any(f not in FLIPS for f in self.tta_flips):
            raise ConfigError(f"tta_flips={self.tta_flips}; expected names from {tuple(FLIPS)}")
        if self.batch_size < 1 or self.max_pixels < 1 or self.max_slices < 1:
            raise ConfigError("batch_size, max_pixels and max_slices must be positive")

    @classmethod
    def for_bundle(cls, bundle: Bundle, **overrides: Any) -> AnalysisSettings:
        """Bundle defaults, then ``overrides`` (None values are ignored)."""
        names = {f.name for f in fields(cls)}
        base = {k: v for k, v in bundle.analysis.items() if k in names}
        if "tta_flips" in base:
            base["tta_flips"] = tuple(base["tta_flips"])
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown analysis setting(s) {sorted(unknown)}; valid: {sorted(names)}")
        return replace(cls(**base), **{k: v for k, v in overrides.items() if v is not None})


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q)).astype(np.float32)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    box = foreground_box(mask)
    if box is None:
        return None
    rows, cols = box
    return rows.start, rows.stop, cols.start, cols.stop


class SliceEngine:
    """Runs batches of (prepared scan, slice index) pairs through a bundle's networks."""

    def __init__(self, bundle: Bundle, backend: Backend, settings: AnalysisSettings) -> None:
        self.bundle, self.backend, self.settings = bundle, backend, settings
        cls = bundle.models.get("cls")
        self.cls_size = int(cls.prep["image_size"]) if cls else 0
        self.cls_coords = coord_channels(cls.prep) if cls else 0  # position channels of its input
        classes = cls.classes if cls else []
        no = no_tumour_class(classes)
        self.keep = [i for i, c in enumerate(classes) if c != no]  # tumour classes of the ROI model
        self.gate_no = bundle.gate.classes.index(bundle.no_tumour_class) if bundle.gate else None
        fusion = bundle.fusion
        self.weight_cnn = float(fusion["weight_cnn"]) if fusion and bundle.forest is not None else 1.0
        self._explainer: GradCamExplainer | None = None
        self._warned_gradcam = False

    def explainer(self) -> GradCamExplainer:
        if self._explainer is None:
            cls = self.bundle.models["cls"]
            self._explainer = GradCamExplainer(cls.net, cls.model_name)
        return self._explainer

    def _warn_no_gradcam(self) -> None:
        if not self._warned_gradcam:
            self._warned_gradcam = True
            warnings.warn(
                f"bundle {self.bundle.name!r} only segments (no classifier): Grad-CAM explains the "
                "classifier, so no heat maps are made",
                UserWarning,
                stacklevel=3,
            )

    def _probs(self, role: str, x: np.ndarray, task: str) -> np.ndarray:
        coords = self.cls_coords if role == "cls" else 0

        def run(batch: np.ndarray) -> np.ndarray:
            return self.backend.run(role, batch)

        return tta_probabilities(run, x, task, self.settings.tta_flips, coords)

    def run(self, items: list[tuple[PreparedScan, int]], gradcam: bool = False) -> list[SliceResult]:
        """Analyse the slices; blank slices come back as ``skipped`` without touching a network."""
        results = [SliceResult(i) for _, i in items]
        live = [k for k, (p, i) in enumerate(items) if not p.blank[i]]
        for k in set(range(len(items))) - set(live):
            results[k].skipped = "blank slice"
            results[k].label = self.bundle.no_tumour_class
            results[k].area_mm2 = 0.0 if items[k][0].scan.spacing else None
        if not live:
            return results
        seg_x = np.stack([items[k][0].seg[items[k][1]] for k in live])
        seg_probs = self._probs("seg", seg_x, "segment")
        mean = seg_probs.mean(axis=0)
        seg_var = mask_variance(seg_probs, mean > 0.5)
        gate_probs = self._gate(items, live)
        positives: list[tuple[int, np.ndarray]] = []
        for j, k in enumerate(live):
            prepared = items[k][0]
            mask = self._mask(mean[j], prepared.scan.shape)
            res = results[k]
            p_no = 0.0
            if gate_probs is not None and self.bundle.gate is not None and self.gate_no is not None:
                res.gate_probabilities = dict(
                    zip(self.bundle.gate.classes, gate_probs[j].tolist(), strict=True)
                )
                p_no = float(gate_probs[j][self.gate_no])
            area = int(mask.sum())
            if area >= max(self.settings.min_area_px, 1) and p_no < self.settings.gate_threshold:
                res.tumour, res.area_px, res.bbox, res.mask = True, area, _bbox(mask), mask
                res.uncertainty.segmentation = seg_var[j]
                if not self.bundle.has_classifier:
                    res.label = TUMOUR_LABEL
                positives.append((k, mask))
            else:
                res.mask = np.zeros_like(mask)
                res.label, res.probabilities = self.bundle.no_tumour_class, dict(res.gate_probabilities)
            spacing = prepared.scan.spacing
            res.area_mm2 = res.area_px * spacing[0] * spacing[1] if spacing else None
        if positives and self.bundle.has_classifier:
            self._classify(items, results, positives, gradcam)
        elif positives and gradcam:
            self._warn_no_gradcam()
        return results

    def _gate(self, items: list[tuple[PreparedScan, int]], live: list[int]) -> np.ndarray | None:
        """B×K mean gate probabilities of the live slices, or None without a gate."""
        if self.bundle.gate is None:
            return None
        gate_x = np.stack([g[i] for g, i in ((items[k][0].gate, items[k][1]) for k in live) if g is not None])
        return self._probs("gate", gate_x, "classify").mean(axis=0)

    def _mask(self, prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """S×S mean tumour probability -> post-processed H×W uint8 {0,1} mask."""
        mask = mask_to_original(torch.from_numpy(_logit(prob)), shape)
        s = self.settings
        return postprocess(mask, largest=s.largest_component, fill=s.fill_holes).astype(np.uint8)

    def _classify(
        self,
        items: list[tuple[PreparedScan, int]],
        results: list[SliceResult],
        positives: list[tuple[int, np.ndarray]],
        gradcam: bool,
    ) -> None:
        expansion = self.bundle.expansion
        if expansion is None:
            raise ValueError(f"bundle {self.bundle.name!r} has a classifier but no expansion")
        crops = []
        for k, mask in positives:
            prepared, i = items[k]
            if prepared.cls_native is None:
                raise ValueError(f"{prepared.scan.source}: prepared without the classifier's input")
            crop, _ = crop_roi(prepared.cls_native[i], mask, expansion, self.cls_size, self.cls_coords > 0)
            crops.append(crop)
        x = np.stack(crops)
        probs = self._probs("cls", x, "classify")[..., self.keep]
        probs = probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-12)
        mean, var = probs.mean(axis=0), class_variance(probs)
        fused = self._fuse(items, positives, mean) if self.bundle.forest is not None else None
        names = [self.bundle.classes[i] for i in self.keep]
        predicted = np.asarray(self.keep)[mean.argmax(axis=-1)]
        cams = self.explainer()(x, predicted) if gradcam else None
        for j, (k, mask) in enumerate(positives):
            res = results[k]
            final = mean[j] if fused is None else fused[j]
            res.probabilities = dict(zip(names, final.tolist(), strict=True))
            if fused is not None:
                res.cnn_probabilities = dict(zip(names, mean[j].tolist(), strict=True))
            res.label = names[int(final.argmax())]
            res.uncertainty.classification = float(var[j])
            if cams is not None:
                res.heatmap = paste_heatmap(cams[j], mask, expansion, mask.shape)

    def _fuse(
        self, items: list[tuple[PreparedScan, int]], positives: list[tuple[int, np.ndarray]], cnn: np.ndarray
    ) -> np.ndarray:
        """B×K' fused probabilities over the tumour classes: ``weight_cnn`` × ``cnn`` + the rest ×
        the forest's on each slice's region features (raw pixels + predicted mask), renormalised."""
        from braintumor.data.region_features import region_features

        forest = self.bundle.forest
        assert forest is not None
        rows = []
        for k, mask in positives:
            prepared, i = items[k]
            try:
                feats = region_features(prepared.scan.slices[i], mask)
            except ValueError as exc:
                raise DataError(prepared.scan.source, f"slice {i}: {exc}") from None
            rows.append([feats[name] for name in forest.features])
        p = forest.predict_proba(np.asarray(rows))[:, self.keep]
        p = p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-12)
        fused = self.weight_cnn * cnn + (1.0 - self.weight_cnn) * p
        return fused / np.maximum(fused.sum(axis=-1, keepdims=True), 1e-12)
