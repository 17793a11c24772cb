"""One batch of slices through segment -> gate -> ROI crop -> classify -> explain.

Slices from any number of inputs are processed together: each network sees one batched call
holding every flipped TTA copy. Per slice:

1. tumour probability = mean over flips of sigmoid(segmenter); mask = mean > ``threshold``, mapped
   back to the slice's own size (undoing pad + resize), then post-processed as the run was scored
   (:func:`~braintumor.evaluation.postprocess.postprocess_masks`): per slice, or, with
   ``postprocess_scope="patient"``, over the whole volume (largest 3D component), in which case
   :meth:`SliceEngine.run_volume` segments every slice of the volume before step 2;
2. tumour present = mask area >= ``min_area_px`` and, with a gate, P(no tumour) < ``gate_threshold``;
3. the ROI (mask box widened by the bundle's expansion) is cropped from the natively normalised
   slice with :func:`braintumor.data.roi.crop_roi`, as the training cache cropped, and classified;
   the ROI classifier's no-tumour class (if any) is dropped and the rest renormalised; an
   ensemble's members are averaged, or, with ``mask_confidence_floor``, weighted by the
   segmenter's confidence in the mask (:func:`~braintumor.runtime.fusion.confidence_weighted`:
   members reading the crop count less when the mean tumour probability inside the mask is low,
   members reading the whole slice and the gate's tumour classes take their place);
4. with a fused bundle (``fusion`` in bundle.json), the region features of the tumour (raw slice
   pixels, as read for training, and the predicted mask) go through the bundle's forest, and
   the probabilities become ``w`` × classifier + (1 − ``w``) × forest over the same classes; the
   label follows them and the classifier's own stay in ``cnn_probabilities``;
5. uncertainty from the variance over the flips (and an ensemble's members), None with a single
   view (``tta_flips=("none",)`` and one network); Grad-CAM of the classifier's predicted class
   on request.

Without a classifier (segmentation-only bundles) steps 3-5 are skipped: a tumour slice is labelled
:data:`~braintumor.inference.results.TUMOUR_LABEL` with empty ``probabilities`` and no
classification uncertainty, and Grad-CAM (which explains the classifier) is skipped with one
warning per engine.

Without a segmenter (classify-only bundles: a whole-slice classifier alone) each non-blank slice
goes through the whole-slice path the gate uses (:meth:`SliceEngine.whole_slice_probabilities`:
its own preprocessing, one batched forward pass over the flipped copies, mean over flips): its
label is the classifier's class, probabilities over all its classes, classification uncertainty
from the flip variance; the no-tumour class (if any) makes it tumour-free. No mask is made, so a
tumour slice's ``area_px``/``area_mm2``/``bbox`` stay unknown (None); Grad-CAM explains the
classifier on the whole slice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from braintumor.bundle.checks import no_tumour_class
from braintumor.bundle.load import Bundle
from braintumor.data.readers import DEFAULT_MAX_PIXELS
from braintumor.data.roi import WHOLE_IMAGE_EXPANSION, crop_roi, foreground_box
from braintumor.errors import ConfigError, DataError
from braintumor.evaluation.postprocess import postprocess_masks
from braintumor.inference.backends import Backend
from braintumor.inference.gradcam import GradCamExplainer, paste_heatmap, unpad_heatmap
from braintumor.inference.predict import mask_to_original
from braintumor.inference.prepare import PreparedScan, SliceInputs
from braintumor.inference.results import TUMOUR_LABEL, SliceResult
from braintumor.inference.sources import DEFAULT_MAX_SLICES
from braintumor.runtime.fusion import confidence_weighted, fuse, mask_confidence, mask_weight, renormalised
from braintumor.runtime.tta import FLIPS, class_variance, mask_variance, tta_probabilities


@dataclass(frozen=True)
class AnalysisSettings:
    """Decision thresholds and throughput knobs (defaults come from the bundle's ``analysis``)."""

    min_area_px: int = 10
    gate_threshold: float = 0.5
    threshold: float = 0.5
    largest_component: bool = True
    fill_holes: bool = True
    component_fraction: float = 1.0
    postprocess_scope: str = "slice"
    mask_confidence_floor: float | None = None
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
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold={self.threshold}; expected a tumour probability in (0, 1)")
        if not 0 <= self.component_fraction <= 1:
            raise ConfigError(f"component_fraction={self.component_fraction}; expected a fraction in [0, 1]")
        floor = self.mask_confidence_floor
        if floor is not None and not 0 <= floor < 1:
            raise ConfigError(f"mask_confidence_floor={floor}; expected a tumour probability in [0, 1)")
        if self.postprocess_scope not in ("slice", "patient"):
            raise ConfigError(f"postprocess_scope={self.postprocess_scope!r}; expected 'slice' or 'patient'")
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


def _input(stack: SliceInputs | None, role: str) -> SliceInputs:
    """A prepared model's inputs, or ValueError when the scan was prepared without them."""
    if stack is None:
        raise ValueError(f"the scan was prepared without the {role!r} model's input")
    return stack


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    box = foreground_box(mask)
    if box is None:
        return None
    rows, cols = box
    return rows.start, rows.stop, cols.start, cols.stop


@dataclass
class Segmented:
    """The segmenter's output for one non-blank slice: H×W uint8 mask (at the slice's own size),
    flip variance over it, the gate's class probabilities (None without a gate) and the
    segmenter's confidence in the mask (:func:`~braintumor.runtime.fusion.mask_confidence`; None
    for a mask given, not predicted)."""

    mask: np.ndarray
    variance: float | None
    gate: np.ndarray | None
    confidence: float | None = None


class SliceEngine:
    """Runs batches of (prepared scan, slice index) pairs through a bundle's networks."""

    def __init__(self, bundle: Bundle, backend: Backend, settings: AnalysisSettings) -> None:
        self.bundle, self.backend, self.settings = bundle, backend, settings
        cls = bundle.models.get("cls")
        self.cls_size = cls.prep.image_size if cls else 0
        self.cls_coords = cls.prep.coord_channels if cls else 0  # position channels of its input
        self.members = bundle.classifier_roles  # cls, and an ensemble's cls2, cls3...
        classes = cls.classes if cls else []
        no = no_tumour_class(classes)
        self.keep = [i for i, c in enumerate(classes) if c != no]  # tumour classes of the ROI model
        self.tumour_classes = [classes[i] for i in self.keep]
        self.gate_no = bundle.gate.classes.index(bundle.no_tumour_class) if bundle.gate else None
        # whether the gate tells the classifier's tumour classes apart (it stands in for a doubtful crop)
        self.gate_knows_classes = bundle.gate is not None and set(self.tumour_classes) <= set(
            bundle.gate.classes
        )
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
        coords = self.cls_coords if role in self.members else 0

        def run(batch: np.ndarray) -> np.ndarray:
            return self.backend.run(role, batch)

        return tta_probabilities(run, x, task, self.settings.tta_flips, coords)

    def run(self, items: list[tuple[PreparedScan, int]], gradcam: bool = False) -> list[SliceResult]:
        """Analyse the slices, each post-processed on its own (2D); blank slices come back as
        ``skipped`` without touching a network."""
        if self.bundle.classifies_whole_slices:
            return self.classify_whole(items, gradcam)
        segmented = self.segment(items)
        self.postprocess(segmented)
        return self.decide(items, segmented, gradcam)

    def run_volume(
        self, prepared: PreparedScan, gradcam: bool = False, between: Callable[[], None] | None = None
    ) -> list[SliceResult]:
        """Analyse every slice of one volume, its masks post-processed over the whole volume as the
        settings say (``postprocess_scope``): segment all slices (in batches), post-process the
        stacked masks, then gate and classify. ``between`` is called before each batch (a
        cancellation check)."""
        items = [(prepared, i) for i in range(len(prepared.blank))]
        step = self.settings.batch_size
        if self.bundle.classifies_whole_slices:  # nothing to post-process: batch by batch
            results: list[SliceResult] = []
            for start in range(0, len(items), step):
                if between is not None:
                    between()
                results += self.classify_whole(items[start : start + step], gradcam)
            return results
        segmented: list[Segmented | None] = []
        for start in range(0, len(items), step):
            if between is not None:
                between()
            segmented += self.segment(items[start : start + step])
        self.postprocess(segmented, volume=True)
        results = []
        for start in range(0, len(items), step):
            if between is not None:
                between()
            part = slice(start, start + step)
            results += self.decide(items[part], segmented[part], gradcam)
        return results

    def postprocess(self, segmented: list[Segmented | None], volume: bool = False) -> None:
        """Post-process the masks in place as the run was scored: each slice on its own, or, for
        the slices of one volume in slice order (``volume``), as ``postprocess_scope`` says (over
        the whole volume with ``"patient"``). Blank slices (None) stay None."""
        live = [seg for seg in segmented if seg is not None]
        places = [j for j, seg in enumerate(segmented) if seg is not None]
        if not live:
            return
        s = self.settings
        masks = postprocess_masks(
            [seg.mask for seg in live],
            ["volume"] * len(live),
            [float(j) for j in places],  # a blank slice between two keeps them apart
            s.largest_component,
            s.fill_holes,
            s.component_fraction,
            s.postprocess_scope if volume else "slice",
        )
        for seg, mask in zip(live, masks, strict=True):
            seg.mask = mask.astype(np.uint8)

    def segment(self, items: list[tuple[PreparedScan, int]]) -> list[Segmented | None]:
        """The segmenter's (and gate's) output for each slice, None for blank slices; masks are
        thresholded at the slice's own size, not yet post-processed."""
        out: list[Segmented | None] = [None] * len(items)
        live = [k for k, (p, i) in enumerate(items) if not p.blank[i]]
        if not live:
            return out
        seg_x = np.stack([_input(items[k][0].seg, "seg")[items[k][1]] for k in live])
        seg_probs = self._probs("seg", seg_x, "segment")
        mean = seg_probs.mean(axis=0)
        seg_var = mask_variance(seg_probs, mean > self.settings.threshold)
        gate_probs = self._gate(items, live)
        for j, k in enumerate(live):
            mask = mask_to_original(
                torch.from_numpy(_logit(mean[j])), items[k][0].scan.shape, self.settings.threshold
            )
            gate = gate_probs[j] if gate_probs is not None else None
            confidence = mask_confidence(mean[j], self.settings.threshold)
            out[k] = Segmented(mask, seg_var[j], gate, confidence)
        return out

    def decide(
        self, items: list[tuple[PreparedScan, int]], segmented: list[Segmented | None], gradcam: bool = False
    ) -> list[SliceResult]:
        """Tumour or not (mask area, gate), then the tumour slices' classes (see the module notes)."""
        results = [SliceResult(i) for _, i in items]
        positives: list[tuple[int, np.ndarray]] = []
        confidence: list[float] = []
        for k, seg in enumerate(segmented):
            prepared, res = items[k][0], results[k]
            spacing = prepared.scan.spacing
            if seg is None:
                self._blank(res, spacing)
                continue
            mask, p_no = seg.mask, 0.0
            if seg.gate is not None and self.bundle.gate is not None and self.gate_no is not None:
                res.gate_probabilities = dict(zip(self.bundle.gate.classes, seg.gate.tolist(), strict=True))
                p_no = float(seg.gate[self.gate_no])
            area = int(mask.sum())
            if area >= max(self.settings.min_area_px, 1) and p_no < self.settings.gate_threshold:
                res.tumour, res.area_px, res.bbox, res.mask = True, area, _bbox(mask), mask
                res.uncertainty.segmentation = seg.variance
                if not self.bundle.has_classifier:
                    res.label = TUMOUR_LABEL
                positives.append((k, mask))
                confidence.append(1.0 if seg.confidence is None else seg.confidence)
            else:
                res.mask = np.zeros_like(mask)
                res.label, res.probabilities = self.bundle.no_tumour_class, dict(res.gate_probabilities)
            res.area_mm2 = (res.area_px or 0) * spacing[0] * spacing[1] if spacing else None
        if positives and self.bundle.has_classifier:
            self._classify(items, results, positives, np.asarray(confidence), gradcam)
        elif positives and gradcam:
            self._warn_no_gradcam()
        return results

    def _blank(self, res: SliceResult, spacing: tuple[float, float] | None) -> None:
        """A blank (constant) slice: skipped, tumour-free, no network run."""
        res.skipped, res.label = "blank slice", self.bundle.no_tumour_class
        res.area_mm2 = 0.0 if spacing else None

    def whole_slice_probabilities(
        self, role: str, items: list[tuple[PreparedScan, int]], live: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The B×C×G×G prepared inputs of whole-slice model ``role`` (the gate, or a classify-only
        bundle's classifier) for the slices ``live`` indexes in ``items``, and its F×B×K per-flip
        class probabilities on them: one batched call over every flipped copy."""
        x = np.stack([_input(items[k][0].whole_slice.get(role), role)[items[k][1]] for k in live])
        return x, self._probs(role, x, "classify")

    def _gate(self, items: list[tuple[PreparedScan, int]], live: list[int]) -> np.ndarray | None:
        """B×K mean gate probabilities of the live slices, or None without a gate."""
        if self.bundle.gate is None:
            return None
        return self.whole_slice_probabilities("gate", items, live)[1].mean(axis=0)

    def classify_whole(
        self, items: list[tuple[PreparedScan, int]], gradcam: bool = False
    ) -> list[SliceResult]:
        """A classify-only bundle's results: each non-blank slice classified whole (see the module
        notes); Grad-CAM of the predicted class on the tumour slices when asked."""
        results = [SliceResult(i) for _, i in items]
        live = [k for k, (p, i) in enumerate(items) if not p.blank[i]]
        for k, (prepared, i) in enumerate(items):
            if prepared.blank[i]:
                self._blank(results[k], prepared.scan.spacing)
        if not live:
            return results
        x, probs = self.whole_slice_probabilities("cls", items, live)
        mean, var = probs.mean(axis=0), class_variance(probs)
        classes, no = self.bundle.classes, no_tumour_class(self.bundle.classes)
        for j, k in enumerate(live):
            res = results[k]
            res.label = classes[int(mean[j].argmax())]
            res.probabilities = dict(zip(classes, mean[j].tolist(), strict=True))
            res.uncertainty.classification = var[j]
            res.tumour = res.label != no
            if res.tumour:
                res.area_px = None  # no mask: the tumour's size is unknown
            elif items[k][0].scan.spacing:
                res.area_mm2 = 0.0
        hits = [j for j, k in enumerate(live) if results[k].tumour]
        if gradcam and hits:
            cams = self.explainer()(x[hits], mean[hits].argmax(axis=-1))
            for cam, j in zip(cams, hits, strict=True):
                results[live[j]].heatmap = unpad_heatmap(cam, items[live[j]][0].scan.shape)
        return results

    def _classify(
        self,
        items: list[tuple[PreparedScan, int]],
        results: list[SliceResult],
        positives: list[tuple[int, np.ndarray]],
        confidence: np.ndarray,
        gradcam: bool,
    ) -> None:
        expansion = self.bundle.expansion
        if expansion is None:
            raise ValueError(f"bundle {self.bundle.name!r} has a classifier but no expansion")
        factors = {r: self.bundle.models[r].prep.roi_expansion or expansion for r in self.members}
        crops = {r: self._crops(items, positives, factors[r]) for r in self.members}
        x = crops["cls"]  # the primary's, which Grad-CAM explains
        member_probs = {  # role -> flips × B × K'
            r: renormalised(self._probs(r, crops[r], "classify")[..., self.keep]) for r in self.members
        }
        probs = np.concatenate(list(member_probs.values()))  # (members × flips) × B × K'
        var = class_variance(probs)
        if self.settings.mask_confidence_floor is None:  # every member and flip weighs the same
            mean = probs.mean(axis=0)
        else:
            on_crop = [
                member_probs[r].mean(axis=0) for r in self.members if factors[r] < WHOLE_IMAGE_EXPANSION
            ]
            whole = [
                member_probs[r].mean(axis=0) for r in self.members if factors[r] >= WHOLE_IMAGE_EXPANSION
            ]
            weight = mask_weight(confidence, self.settings.mask_confidence_floor)
            mean = confidence_weighted(on_crop, whole, self._gate_tumour_classes(results, positives), weight)
        fused = self._fuse(items, positives, mean) if self.bundle.forest is not None else None
        names = self.tumour_classes
        predicted = np.asarray(self.keep)[mean.argmax(axis=-1)]
        cams = self.explainer()(x, predicted) if gradcam else None
        for j, (k, mask) in enumerate(positives):
            res = results[k]
            final = mean[j] if fused is None else fused[j]
            res.probabilities = dict(zip(names, final.tolist(), strict=True))
            if fused is not None:
                res.cnn_probabilities = dict(zip(names, mean[j].tolist(), strict=True))
            res.label = names[int(final.argmax())]
            res.uncertainty.classification = var[j]
            if cams is not None:
                res.heatmap = paste_heatmap(cams[j], mask, expansion, mask.shape)

    def _gate_tumour_classes(
        self, results: list[SliceResult], positives: list[tuple[int, np.ndarray]]
    ) -> np.ndarray | None:
        """B×K' gate probabilities of the classifier's tumour classes for the positive slices, or
        None when there is no gate, it does not tell those classes apart, or it did not run (masks
        given rather than segmented, e.g. ground-truth crops)."""
        if not self.gate_knows_classes:
            return None
        if not all(results[k].gate_probabilities for k, _ in positives):  # masks given, not segmented
            return None
        return np.array(
            [[results[k].gate_probabilities[c] for c in self.tumour_classes] for k, _ in positives]
        )

    def _crops(
        self, items: list[tuple[PreparedScan, int]], positives: list[tuple[int, np.ndarray]], expansion: float
    ) -> np.ndarray:
        """B×C×S×S classifier inputs: each positive slice cropped around its mask at ``expansion``."""
        crops = []
        for k, mask in positives:
            prepared, i = items[k]
            if prepared.cls_native is None:
                raise ValueError(f"{prepared.scan.source}: prepared without the classifier's input")
            crop, _ = crop_roi(prepared.cls_native[i], mask, expansion, self.cls_size, self.cls_coords > 0)
            crops.append(crop)
        return np.stack(crops)

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
        return fuse(cnn, forest.predict_proba(np.asarray(rows))[:, self.keep], self.weight_cnn)
