"""Integrated segment -> crop -> classify evaluation on each fold's unseen patients, scored through
the code that ships.

For fold k, the bundle that ``braintumor bundle create --seg seg/fold<k> --cls cls/fold<k>``
(``--gate``, ``--fuse-forest``) would write is built in memory
(:func:`~braintumor.bundle.create.from_run`; its analysis settings are the segmentation run's
evaluation settings), and the fold's test patients are analysed with it as ``braintumor analyze``
analyses them: one input per patient volume or per image
(:func:`~braintumor.experiments.shipped.held_out_inputs`), read, prepared and run through the
analyser's :class:`~braintumor.inference.pipeline.SliceEngine` (segment, post-process, gate, crop,
classify, fuse). Several classification runs make the bundle's classifier ensemble (``bundle
create --cls A --cls B``), averaged as analysis averages them. The same engine also classifies
each tumour slice from its **ground-truth** mask (``*_gt_crop``), so the two accuracies differ
only by the mask. All runs must share their splits (``splits_from``); a gate must not have
trained on the test patients.

Scores, over the tumour slices (those whose ground-truth mask is not empty):

* ``accuracy``, ``balanced_accuracy``, ``macro_f1``: the pipeline's class. A tumour slice the
  pipeline calls tumour-free (predicted mask under ``min_area_px``, or vetoed by the gate) counts
  as wrong; the confusion matrix has that call as its last column, and macro-F1 averages the
  tumour classes (a missed slice lowers its class's recall).
* ``n_missed`` / ``missed_fraction``: tumour slices called tumour-free; ``n_gate_missed`` /
  ``gate_missed_fraction`` (with a gate): those among them whose mask was large enough, vetoed by
  the gate.
* ``accuracy_gt_crop``, ``macro_f1_gt_crop``: the classifier on ground-truth crops (every tumour
  slice is classified).
* With ``fuse_weight`` the bundle fuses its classifier with a region-feature forest; its labels
  give the ``*_fused`` scores, and the plain ones come from the classifier's own probabilities
  (``cnn_probabilities``).
* ``accuracy_patient_vote``, ``accuracy_gt_crop_patient_vote``: the same when each patient's slices
  vote (:func:`~braintumor.runtime.fusion.consensus` of the classifier's probabilities over the
  patient's slices called tumour, as ``analyze`` labels a volume); a slice called tumour-free
  stays wrong. What analysing all of a patient's slices together gives.
* Dice, IoU, precision, recall: the masks as shipped (empty where a slice was called tumour-free)
  against the ground truth, at each file's own size, over every slice with a mask file.

Layout of the output folder (a cross-validation folder, so ``braintumor report`` reads it)::

    OUT/fold<k>/metrics.json    Dice per patient / per slice, pipeline and ground-truth-crop scores
    OUT/fold<k>/per_slice.csv   per slice: Dice, the pipeline's call, true / pipeline / gt-crop class
    OUT/fold<k>/per_patient.csv per patient: volumetric Dice, IoU, precision, recall
    OUT/fold<k>/confusion.png   pipeline confusion matrix (confusion_fused.png with fusion)
    OUT/cv_metrics.json, OUT/cv_folds.csv   mean and std over folds
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from braintumor.bundle.create import from_run
from braintumor.bundle.load import Bundle
from braintumor.data.readers import read_mask
from braintumor.errors import DataError
from braintumor.evaluation import SegmentationAccumulator, calls_report, label_map, patient_consensus
from braintumor.experiments.segment import fold_parts, fold_runs
from braintumor.experiments.shipped import SCORING_PRECISION, held_out_inputs
from braintumor.inference.backends import make_backend
from braintumor.inference.pipeline import AnalysisSettings, Segmented, SliceEngine
from braintumor.inference.prepare import PreparedScan, prepare_scan
from braintumor.inference.results import SliceResult
from braintumor.inference.sources import InputItem, read_scan
from braintumor.io_utils import atomic_write, atomic_write_json, finite
from braintumor.run_dir import RunDir
from braintumor.runtime.fusion import MASK_CONFIDENCE_FLOOR, consensus

PIPELINE_KEYS = (
    "dice_per_patient_mean", "dice_per_slice_mean", "iou", "precision", "recall",
    "accuracy", "macro_f1", "balanced_accuracy", "accuracy_gt_crop", "macro_f1_gt_crop",
    "missed_fraction", "gate_missed_fraction",
    "accuracy_fused", "macro_f1_fused", "balanced_accuracy_fused", "accuracy_gt_crop_fused",
    "macro_f1_gt_crop_fused", "accuracy_patient_vote", "accuracy_gt_crop_patient_vote",
)  # fmt: skip
FOREST_TREES = 1000
"""Trees of the fused forest (as ``braintumor experiment fuse``)."""
TUMOUR_CALL = "tumour"


def _check_splits(seg_dir: Path, cls_dirs: list[Path], gate_dir: Path | None) -> tuple[str, set[str]]:
    """(group column, test groups) of the seg run's fold, after checking no model saw them."""
    column, parts = fold_parts(seg_dir)
    test = parts["test"]
    for cls_dir in cls_dirs:
        if fold_parts(cls_dir)[1]["test"] != test:
            raise DataError(
                cls_dir,
                f"its test patients differ from those of {seg_dir}; train both on the same splits "
                "(study steps: splits_from) so the pipeline is scored on patients neither model saw",
            )
    if gate_dir is not None and RunDir(gate_dir).splits.is_file():
        gate_parts = fold_parts(gate_dir)[1]
        seen = sorted((gate_parts["train"] | gate_parts["val"]) & test)
        if seen:
            raise DataError(
                gate_dir,
                f"trained on (or chose its checkpoint with) {len(seen)} test patient(s) of {seg_dir}, "
                f"e.g. {seen[0]}; train the gate on other patients (same splits, or other data)",
            )
    return column, test


def _cnn_probabilities(res: SliceResult) -> dict[str, float]:
    """The classifier's own probabilities (before fusion), else certainty of the slice's label."""
    if res.tumour and res.cnn_probabilities:
        return res.cnn_probabilities
    return {res.label: 1.0} if res.label is not None else {}


def _cnn_label(res: SliceResult) -> str | None:
    """The classifier's own class (its probabilities before fusion), else the slice's label."""
    probs = _cnn_probabilities(res)
    return max(probs, key=lambda c: probs[c]) if probs else None


def _vote(probabilities: list[dict[str, float]], classes: list[str]) -> str:
    """The class of :func:`~braintumor.runtime.fusion.consensus` over one patient's slices."""
    rows = np.array([[p.get(c, 0.0) for c in classes] for p in probabilities])
    return classes[int(np.argmax(consensus(rows)))]


@dataclass
class _Fold:
    """One fold's engines (as shipped, and for ground-truth crops) and what they scored."""

    bundle: Bundle
    engine: SliceEngine
    truth_engine: SliceEngine
    classes: list[str]
    seg: SegmentationAccumulator = field(
        default_factory=lambda: SegmentationAccumulator(store_masks=False, compute_hd95=False)
    )
    rows: list[dict[str, Any]] = field(default_factory=list)
    votes: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    """Per patient, the classifier's probabilities on each of its slices called tumour."""

    @classmethod
    def of(cls, bundle: Bundle, settings: AnalysisSettings) -> _Fold:
        backend = make_backend(bundle, "torch", SCORING_PRECISION)
        engine = SliceEngine(bundle, backend, settings)
        # every non-empty ground-truth mask is a tumour to classify, however small
        truth_engine = SliceEngine(bundle, backend, replace(settings, min_area_px=0))
        return cls(bundle, engine, truth_engine, engine.tumour_classes)

    @property
    def fused(self) -> bool:
        """Whether the bundle fuses its classifier with a forest (its labels are the fused ones)."""
        return self.bundle.fusion is not None and self.bundle.forest is not None

    @property
    def no_tumour(self) -> str:
        return self.bundle.no_tumour_class

    def batches(self, n: int) -> list[slice]:
        step = self.engine.settings.batch_size
        return [slice(start, start + step) for start in range(0, n, step)]

    def analyse(
        self, items: list[tuple[PreparedScan, int]], volume: bool
    ) -> tuple[list[Segmented | None], list[SliceResult]]:
        """The engine's masks (post-processed) and results, as :class:`~braintumor.inference.Analyzer`."""
        segmented: list[Segmented | None] = []
        for part in self.batches(len(items)):
            segmented += self.engine.segment(items[part])
        self.engine.postprocess(segmented, volume)
        results: list[SliceResult] = []
        for part in self.batches(len(items)):
            results += self.engine.decide(items[part], segmented[part])
        return segmented, results

    def on_truth(self, items: list[tuple[PreparedScan, int]], truths: list[np.ndarray]) -> list[SliceResult]:
        """The engine's results given the ground-truth masks (no gate): the ground-truth crops."""
        given: list[Segmented | None] = [Segmented(t, None, None) for t in truths]
        results: list[SliceResult] = []
        for part in self.batches(len(items)):
            results += self.truth_engine.decide(items[part], given[part])
        return results

    def call(self, res: SliceResult, seg: Segmented | None) -> str:
        """``tumour``, or why the pipeline called the slice tumour-free."""
        if res.tumour:
            return TUMOUR_CALL
        if seg is None:
            return "no tumour: blank slice"
        s = self.engine.settings
        vetoed = res.gate_probabilities.get(self.no_tumour, 0.0) >= s.gate_threshold
        if vetoed and int(seg.mask.sum()) >= max(s.min_area_px, 1):
            return "no tumour: gate"
        return "no tumour: mask"

    def score(self, prepared: list[PreparedScan], rows: list[list[int]], frame: pd.DataFrame) -> None:
        """Analyse the prepared inputs (one volume, or images) and score their slices with a mask."""
        volume = len(prepared) == 1 and prepared[0].scan.kind == "volume"
        items = [(p, i) for p in prepared for i in range(len(p.blank))]
        flat = [r for rs in rows for r in rs]
        segmented, results = self.analyse(items, volume)
        for res, r in zip(results, flat, strict=True):
            if res.tumour:
                self.votes.setdefault(str(frame.at[r, "patient_id"]), []).append(_cnn_probabilities(res))
        scored = [k for k, r in enumerate(flat) if frame.at[r, "mask"] != ""]
        truths = {k: read_mask(frame.at[flat[k], "mask"], items[k][0].scan.shape) for k in scored}
        for k in scored:
            res, r = results[k], flat[k]
            pred = res.mask if res.mask is not None else np.zeros_like(truths[k])
            self.seg.add(pred[None], truths[k][None], [str(frame.at[r, "patient_id"])],
                         [str(frame.at[r, "sample_id"])], [float(frame.at[r, "slice"])])  # fmt: skip
        tumour = [k for k in scored if truths[k].any()]  # as the ROI training cache: tumour slices only
        on_truth = self.on_truth([items[k] for k in tumour], [truths[k] for k in tumour])
        for k, gt in zip(tumour, on_truth, strict=True):
            self.rows.append(self.row(frame, flat[k], results[k], segmented[k], gt))

    def row(
        self, frame: pd.DataFrame, r: int, res: SliceResult, seg: Segmented | None, gt: SliceResult
    ) -> dict[str, Any]:
        """One tumour slice's entry of ``per_slice.csv``."""
        target = str(frame.at[r, "label"])
        label_map([target], self.classes, self.bundle.models["cls"].where)  # refuses unknown classes
        row: dict[str, Any] = {
            "sample_id": str(frame.at[r, "sample_id"]), "patient_id": str(frame.at[r, "patient_id"]),
            "target": target, "call": self.call(res, seg),
            "pred_pipeline": _cnn_label(res) if res.tumour else self.no_tumour,
            "pred_gt_crop": _cnn_label(gt),
        }  # fmt: skip
        gt_probs = _cnn_probabilities(gt)
        row.update({f"gt_prob_{c}": gt_probs.get(c, 0.0) for c in self.classes})
        if self.fused:
            row.update(
                pred_pipeline_fused=res.label if res.tumour else self.no_tumour, pred_gt_crop_fused=gt.label
            )
        return row


def _score_inputs(fold: _Fold, items: list[InputItem], rows: list[list[int]], frame: pd.DataFrame) -> None:
    """Read and prepare each input as the analyser does; volumes one at a time, images in batches."""
    s = fold.engine.settings
    pending: tuple[list[PreparedScan], list[list[int]]] = ([], [])
    for order, (item, rs) in enumerate(zip(items, rows, strict=True)):
        prepared = prepare_scan(read_scan(item, s.max_pixels, s.max_slices), fold.bundle, order)
        if prepared.scan.kind == "volume":
            fold.score([prepared], [rs], frame)
            continue
        pending[0].append(prepared)
        pending[1].append(rs)
        if len(pending[0]) == s.batch_size:
            fold.score(*pending, frame)
            pending = ([], [])
    if pending[0]:
        fold.score(*pending, frame)


def _settings(bundle: Bundle, postprocess: bool | None) -> AnalysisSettings:
    """The bundle's analysis settings; ``postprocess`` True/False forces the largest component and
    hole filling on or off (None: as the segmentation run was scored)."""
    if postprocess is None:
        return AnalysisSettings.for_bundle(bundle)
    return AnalysisSettings.for_bundle(bundle, largest_component=postprocess, fill_holes=postprocess)


def evaluate_pipeline_fold(
    seg_dir: Path,
    cls_dirs: list[Path],
    out_dir: Path,
    postprocess: bool | None = None,
    fuse_weight: float | None = None,
    gate_dir: Path | None = None,
    forest_trees: int = FOREST_TREES,
    mask_confidence_floor: float | None = MASK_CONFIDENCE_FLOOR,
) -> dict[str, Any]:
    """Score the pipeline of one fold (the seg run's data and test patients); writes ``out_dir``.
    With ``fuse_weight`` (the CNN's share) the bundle fuses the classifier with a region-feature
    forest fitted on its training patients, as ``bundle create --fuse-forest`` does."""
    from braintumor.config import load_config
    from braintumor.training.data import load_index

    column, test = _check_splits(seg_dir, cls_dirs, gate_dir)
    fusion: dict[str, Any] = {}
    if fuse_weight is not None:
        fusion = {"fuse_forest": True, "fuse_weight": fuse_weight, "forest_trees": forest_trees}
    bundle = from_run(seg_dir, cls_dirs, gate_dir, mask_confidence_floor=mask_confidence_floor, **fusion)
    fold = _Fold.of(bundle, _settings(bundle, postprocess))
    cfg = load_config(RunDir(seg_dir).config)
    index = load_index(cfg.data, seg_dir)
    items, rows = held_out_inputs(index, test, column)
    _score_inputs(fold, items, rows, index.frame)
    if not fold.rows:
        raise DataError(seg_dir, "no test slice with a tumour mask; nothing to classify")
    s = fold.engine.settings
    facts = {"fold": cfg.data.fold, "engine": "shipped", "seg_run": str(seg_dir),
             "cls_run": ", ".join(map(str, cls_dirs)), "gate_run": str(gate_dir) if gate_dir else None,
             "roi_expansion": bundle.expansion,
             "postprocess": s.largest_component or s.fill_holes,
             "analysis": {k: v for k, v in vars(s).items() if k not in ("batch_size", "prefetch")},
    }  # fmt: skip
    return _write_fold(out_dir, fold, facts)


def _class_metrics(rows: pd.DataFrame, fold: _Fold) -> dict[str, Any]:
    names = [*fold.classes, fold.no_tumour]
    pipe = calls_report(rows["target"], rows["pred_pipeline"], names)
    gt = calls_report(rows["target"], rows["pred_gt_crop"], names)
    tumour = rows["call"] == TUMOUR_CALL
    # each patient's slices vote, as analyze labels a volume: those called tumour, or on
    # ground-truth crops every tumour slice
    voted = {p: _vote(v, fold.classes) for p, v in fold.votes.items()}
    calls = [voted[p] if t else fold.no_tumour for p, t in zip(rows["patient_id"], tumour, strict=True)]
    gt_voted = patient_consensus(rows[[f"gt_prob_{c}" for c in fold.classes]], list(rows["patient_id"]))
    pipe_votes = calls_report(rows["target"], calls, names)
    gt_votes = calls_report(rows["target"], [fold.classes[i] for i in gt_voted.argmax(axis=1)], names)
    n, missed = len(rows), int((~tumour).sum())
    metrics: dict[str, Any] = {
        "accuracy": pipe["accuracy"], "macro_f1": pipe["macro_f1"],
        "balanced_accuracy": pipe["balanced_accuracy"],
        "accuracy_gt_crop": gt["accuracy"], "macro_f1_gt_crop": gt["macro_f1"],
        "accuracy_patient_vote": pipe_votes["accuracy"],
        "accuracy_gt_crop_patient_vote": gt_votes["accuracy"],
        "n_classified": n, "n_missed": missed, "missed_fraction": missed / n,
        "per_class": pipe["per_class"], "confusion": pipe["confusion"], "confusion_classes": names,
    }  # fmt: skip
    if fold.bundle.gate is not None:
        gated = int((rows["call"] == "no tumour: gate").sum())
        metrics.update(n_gate_missed=gated, gate_missed_fraction=gated / n)
    if fold.fused:
        fused = calls_report(rows["target"], rows["pred_pipeline_fused"], names)
        fused_gt = calls_report(rows["target"], rows["pred_gt_crop_fused"], names)
        metrics.update(accuracy_fused=fused["accuracy"], macro_f1_fused=fused["macro_f1"],
                       balanced_accuracy_fused=fused["balanced_accuracy"],
                       accuracy_gt_crop_fused=fused_gt["accuracy"],
                       macro_f1_gt_crop_fused=fused_gt["macro_f1"],
                       fuse_weight=fold.engine.weight_cnn, confusion_fused=fused["confusion"])  # fmt: skip
    return metrics


def _write_fold(out_dir: Path, fold: _Fold, facts: dict[str, Any]) -> dict[str, Any]:
    from braintumor.reports.plots import plot_confusion_matrix, save_figure

    rows = pd.DataFrame(fold.rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_slice = fold.seg.per_slice().merge(rows, on=["sample_id", "patient_id"], how="left")
    per_patient = fold.seg.per_patient()
    atomic_write(RunDir(out_dir).per_slice, lambda tmp: per_slice.to_csv(tmp, index=False))
    atomic_write(RunDir(out_dir).per_patient, lambda tmp: per_patient.to_csv(tmp, index=False))
    summary = {k: v for k, v in fold.seg.summary().items() if k != "hd95"}
    classes = _class_metrics(rows, fold)
    metrics: dict[str, Any] = finite(
        {"task": "pipeline", **facts, **summary, **classes, "per_patient": per_patient.to_dict("records")}
    )
    names = classes["confusion_classes"]
    save_figure(plot_confusion_matrix(classes["confusion"], names), RunDir(out_dir).confusion)
    if "confusion_fused" in classes:
        save_figure(plot_confusion_matrix(classes["confusion_fused"], names), RunDir(out_dir).confusion_fused)
    atomic_write_json(RunDir(out_dir).metrics, metrics)
    return metrics


def aggregate_pipeline(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"task": "pipeline", "n_folds", "mean", "std", "folds"}`` over the folds' metrics."""
    mean, std = {}, {}
    for key in PIPELINE_KEYS:
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=float)
        finite_values = values[~np.isnan(values)]
        mean[key] = float(finite_values.mean()) if finite_values.size else None
        std[key] = float(finite_values.std()) if finite_values.size else None
    folds = [{k: v for k, v in r.items() if k != "per_patient"} for r in results]
    return {"task": "pipeline", "n_folds": len(results), "mean": mean, "std": std, "folds": folds}


def _gate_runs(gate: str | Path | None, folds: list[int]) -> dict[int, Path | None]:
    """Fold -> gate run: one run serves every fold; a CV folder gives each fold its own."""
    if gate is None:
        return dict.fromkeys(folds)
    if RunDir(Path(gate)).metrics.is_file():
        return dict.fromkeys(folds, Path(gate))
    runs = fold_runs(gate)
    missing = [k for k in folds if k not in runs]
    if missing:
        raise DataError(gate, f"has no finished fold {missing}; the pipeline scores folds {folds}")
    return {k: runs[k] for k in folds}


def _expand_sweeps(paths: list[Path]) -> list[Path]:
    """The classification runs of ``--cls``: a ``sweep-roi`` folder stands for all its arms (the
    factor chosen on validation first, the ensemble's primary)."""
    from braintumor.training.sweep import sweep_arms

    return [arm for p in paths for arm in (sweep_arms(p) if RunDir(p).sweep.is_file() else [Path(p)])]


def evaluate_pipeline(
    seg: str | Path,
    cls: str | Path | list[Path],
    out: str | Path,
    postprocess: bool | None = None,
    fuse_weight: float | None = None,
    gate: str | Path | None = None,
    forest_trees: int = FOREST_TREES,
    mask_confidence_floor: float | None = MASK_CONFIDENCE_FLOOR,
) -> dict[str, Any]:
    """Evaluate the pipeline on every fold that both runs finished (CV folders or single runs).

    Args:
        seg: segmentation run (``fold<k>/`` CV folder or a single-fold run).
        cls: ROI classification run trained on the same splits, or several (an ensemble); a
            ``sweep-roi`` folder is the ensemble of its arms, the chosen factor first.
        out: output folder (see the module docstring).
        postprocess: force the largest component + hole filling on (True) or off (False); None
            post-processes as the segmentation run was evaluated (what its bundle ships).
        fuse_weight: fuse the classifier with a region-feature forest of ``forest_trees`` trees
            (the CNN's share of the probabilities), as a bundle made with ``--fuse-forest``.
        gate: whole-slice tumour/no-tumour run (one run for every fold, or a CV folder with the
            same folds) that vetoes slices, as a bundle's ``--gate``.
        mask_confidence_floor: the bundle's analysis default of that name (``bundle create
            --mask-confidence-floor``); None averages an ensemble's members alike.

    Returns:
        The aggregate written to ``out/cv_metrics.json``.
    """
    seg_runs = fold_runs(seg)
    cls_paths = _expand_sweeps(cls if isinstance(cls, list) else [Path(cls)])
    cls_runs = [fold_runs(c) for c in cls_paths]
    common = sorted(set(seg_runs).intersection(*cls_runs))
    if not common:
        folds = [sorted(runs) for runs in cls_runs]
        where = ", ".join(map(str, cls_paths))
        raise DataError(where, f"shares no finished fold with {seg} (folds {sorted(seg_runs)} vs {folds})")
    gates = _gate_runs(gate, common)
    out = Path(out)
    results = [
        evaluate_pipeline_fold(
            seg_runs[k],
            [runs[k] for runs in cls_runs],
            RunDir(out).fold(k).path,
            postprocess,
            fuse_weight,
            gates[k],
            forest_trees,
            mask_confidence_floor,
        )
        for k in common
    ]
    summary = aggregate_pipeline(results)
    atomic_write_json(RunDir(out).cv_metrics, summary)
    columns = ("fold", *PIPELINE_KEYS, "n_classified", "n_missed")
    table = pd.DataFrame([{k: r.get(k) for k in columns} for r in results])
    atomic_write(RunDir(out).cv_folds, lambda tmp: table.to_csv(tmp, index=False))
    return summary
