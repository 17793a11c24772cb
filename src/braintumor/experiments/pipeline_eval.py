"""Integrated segment -> crop -> classify evaluation on each fold's unseen patients.

For fold k, the U-Net of ``seg/fold<k>`` predicts each test slice's mask (at the slice's own
resolution); the tumour region is cropped from the **predicted** mask with the classifier's
expansion factor (the whole slice when the predicted mask is empty) and classified by
``cls/fold<k>``. The same classifier also scores the crop from the **ground-truth** mask, so the
two accuracies differ only by the mask. Both runs must share their splits (``splits_from``).

The steps are the library's own (:func:`~braintumor.data.preprocess.normalize_images` per patient,
:func:`~braintumor.inference.predict.mask_to_original`, :func:`~braintumor.data.roi.crop_roi`), not
the :class:`~braintumor.inference.Analyzer`: the analyser calls a slice without a predicted tumour
tumour-free instead of classifying the whole slice, and normalises single images per image where
training normalised per patient; here every crop is made exactly as the training cache made it.

Layout of the output folder (a cross-validation folder, so ``braintumor report`` reads it)::

    OUT/fold<k>/metrics.json    Dice per patient / per slice, pipeline and ground-truth-crop scores
    OUT/fold<k>/per_slice.csv   per slice: Dice, crop source, true / pipeline / ground-truth-crop class
    OUT/fold<k>/per_patient.csv per patient: volumetric Dice, IoU, precision, recall
    OUT/fold<k>/confusion.png   pipeline confusion matrix
    OUT/cv_metrics.json, OUT/cv_folds.csv   mean and std over folds
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from braintumor.errors import DataError
from braintumor.evaluation import ClassificationAccumulator, SegmentationAccumulator, label_map
from braintumor.experiments.segment import TrainedModel, fold_runs, patients, predict_masks, test_samples
from braintumor.io_utils import atomic_write, atomic_write_json
from braintumor.run_dir import RunDir

PIPELINE_KEYS = (
    "dice_per_patient_mean", "dice_per_slice_mean", "iou", "precision", "recall",
    "accuracy", "macro_f1", "balanced_accuracy", "accuracy_gt_crop", "macro_f1_gt_crop", "fallback_fraction",
    "accuracy_fused", "macro_f1_fused", "accuracy_gt_crop_fused",
)  # fmt: skip


def classifier_input(
    image: np.ndarray, mask: np.ndarray, expansion: float, size: int, coords: bool = False
) -> tuple[np.ndarray, bool]:
    """The classifier's size×size input: the mask's box widened by ``expansion``, or the whole
    slice when the mask is empty; ``coords`` appends the position channels (``roi_coords``).
    Returns (float32 C×size×size, whether the whole slice was used)."""
    from braintumor.data.roi import crop_roi

    if not np.any(mask):
        return crop_roi(image, mask, None, size, coords)[0], True
    return crop_roi(image, mask, expansion, size, coords)[0], False


def _check_same_test(seg_dir: Path, cls_dir: Path) -> None:
    from braintumor.config import load_config
    from braintumor.data.splits import Splits

    tests = []
    for run in (seg_dir, cls_dir):
        splits = Splits.load(RunDir(run).splits)
        fold = load_config(RunDir(run).config).data.fold
        tests.append(sorted(splits.folds[splits.check_fold(fold)]["test"]))
    if tests[0] != tests[1]:
        raise DataError(
            cls_dir,
            f"its test patients differ from those of {seg_dir}; train both on the same splits "
            "(study steps: splits_from) so the pipeline is scored on patients neither model saw",
        )


@dataclass
class _Fusion:
    """A region-feature forest fitted on the classifier's training patients, and the CNN's share."""

    forest: Any
    weight: float
    pipeline: ClassificationAccumulator
    gt: ClassificationAccumulator

    def fuse(self, logits: torch.Tensor, images: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
        """CNN probabilities averaged with the forest's on each (raw slice, mask); the CNN's alone
        where the mask is empty (the whole slice was classified)."""
        from braintumor.data.region_features import region_features
        from braintumor.training.region_forest import forest_probabilities

        cnn = logits.softmax(dim=1).numpy().astype(float)
        out = cnn.copy()
        rows = [i for i, m in enumerate(masks) if np.any(m)]
        if rows:
            feats = np.array([list(region_features(images[i], masks[i]).values()) for i in rows])
            forest = forest_probabilities(self.forest, feats, cnn.shape[1])
            out[rows] = self.weight * cnn[rows] + (1 - self.weight) * forest
        return out


@dataclass
class _Scores:
    """Accumulators of one fold: Dice, pipeline classification, ground-truth-crop classification."""

    seg: SegmentationAccumulator
    pipeline: ClassificationAccumulator
    gt: ClassificationAccumulator
    rows: list[dict[str, Any]] = field(default_factory=list)
    fusion: _Fusion | None = None


def _score_patient(
    pid: str, frame: pd.DataFrame, seg: TrainedModel, cls: TrainedModel, postprocess: bool, scores: _Scores
) -> None:
    """Segment one test patient's slices, then classify its tumour slices from both masks."""
    from braintumor.data.readers import read_image, read_mask

    raws = [read_image(p) for p in frame["image"]]
    truths = [read_mask(p, r.shape[:2]) for p, r in zip(frame["mask"], raws, strict=True)]
    preds = predict_masks(seg, raws, postprocess)
    for pred, truth, sid in zip(preds, truths, frame["sample_id"], strict=True):
        scores.seg.add(pred[None], truth[None], [pid], [str(sid)])
    tumour = [i for i, t in enumerate(truths) if t.any()]  # as the ROI training cache: tumour slices only
    if not tumour:
        return
    classes, expansion = list(cls.meta["classes"]), float(cls.prep["roi_expansion"])
    coords, images = bool(cls.prep.get("roi_coords")), cls.normalised(raws)
    pipe = [classifier_input(images[i], preds[i], expansion, cls.size, coords) for i in tumour]
    gt = [classifier_input(images[i], truths[i], expansion, cls.size, coords)[0] for i in tumour]
    sids = [str(frame["sample_id"].iloc[i]) for i in tumour]
    target = label_map([str(frame["label"].iloc[i]) for i in tumour], classes, cls.run_dir).tolist()
    pipe_logits, gt_logits = cls.forward(np.stack([x for x, _ in pipe])), cls.forward(np.stack(gt))
    scores.pipeline.add(pipe_logits, np.asarray(target), sids)
    scores.gt.add(gt_logits, np.asarray(target), sids)
    if scores.fusion is not None:
        raw = [raws[i] for i in tumour]
        fused = scores.fusion.fuse(pipe_logits, raw, [preds[i] for i in tumour])
        fused_gt = scores.fusion.fuse(gt_logits, raw, [truths[i] for i in tumour])
        scores.fusion.pipeline.add(fused, np.asarray(target), sids)
        scores.fusion.gt.add(fused_gt, np.asarray(target), sids)
    for j, sid in enumerate(sids):
        scores.rows.append({"sample_id": sid, "patient_id": pid, "target": classes[target[j]],
                            "crop": "whole slice (empty mask)" if pipe[j][1] else "predicted mask",
                            "pred_pipeline": classes[int(pipe_logits[j].argmax())],
                            "pred_gt_crop": classes[int(gt_logits[j].argmax())]})  # fmt: skip


def evaluate_pipeline_fold(
    seg_dir: Path, cls_dir: Path, out_dir: Path, postprocess: bool = True, fuse_weight: float | None = None
) -> dict[str, Any]:
    """Score the pipeline of one fold (the seg run's data and test patients); writes ``out_dir``.
    With ``fuse_weight`` (the CNN's share), the classifier is also scored averaged with a
    region-feature forest (:mod:`braintumor.experiments.fusion`) fitted on its training patients."""
    from braintumor.config import load_config
    from braintumor.training.data import load_index

    _check_same_test(seg_dir, cls_dir)
    seg, cls = TrainedModel.load(seg_dir, "segment"), TrainedModel.load(cls_dir, "classify")
    expansion = cls.prep.get("roi_expansion")
    if expansion is None:
        raise DataError(
            cls_dir, "is a whole-slice classifier; the pipeline needs a ROI classifier (data.roi_expansion)"
        )
    cfg = load_config(RunDir(seg_dir).config)
    test = test_samples(seg_dir, load_index(cfg.data, seg_dir))
    classes = list(cls.meta["classes"])
    scores = _Scores(
        SegmentationAccumulator(store_masks=False, compute_hd95=False),
        ClassificationAccumulator(classes, "logits"),
        ClassificationAccumulator(classes, "logits"),
    )
    if fuse_weight is not None:
        from braintumor.training.region_forest import fit_region_forest, fold_regions

        regions = fold_regions(cls_dir, with_test=False)
        scores.fusion = _Fusion(
            fit_region_forest(regions.x_train, regions.y_train), fuse_weight,
            ClassificationAccumulator(classes, "probs"), ClassificationAccumulator(classes, "probs"),
        )  # fmt: skip
    for pid, positions in patients(test):
        frame = test.frame.loc[positions]
        frame = frame[frame["mask"].astype(str) != ""]
        if not frame.empty:
            _score_patient(pid, frame, seg, cls, postprocess, scores)
    if not scores.rows:
        raise DataError(seg_dir, "no test slice with a tumour mask; nothing to classify")
    facts = {"fold": cfg.data.fold, "seg_run": str(seg_dir), "cls_run": str(cls_dir),
             "roi_expansion": float(expansion), "postprocess": postprocess}  # fmt: skip
    return _write_fold(out_dir, scores, facts)


def _write_fold(out_dir: Path, scores: _Scores, facts: dict[str, Any]) -> dict[str, Any]:
    from braintumor.reports.plots import plot_confusion_matrix, save_figure

    seg_acc, pipe_acc, gt_acc, rows = scores.seg, scores.pipeline, scores.gt, pd.DataFrame(scores.rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_slice = seg_acc.per_slice().merge(rows, on=["sample_id", "patient_id"], how="left")
    per_patient = seg_acc.per_patient()
    atomic_write(RunDir(out_dir).per_slice, lambda tmp: per_slice.to_csv(tmp, index=False))
    atomic_write(RunDir(out_dir).per_patient, lambda tmp: per_patient.to_csv(tmp, index=False))
    pipe, gt = pipe_acc.report(), gt_acc.report()
    fallback = int((rows["crop"] != "predicted mask").sum())
    summary = {
        k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in seg_acc.summary().items()
    }
    metrics: dict[str, Any] = {
        "task": "pipeline", **facts, **{k: v for k, v in summary.items() if k != "hd95"},
        "accuracy": pipe["accuracy"], "macro_f1": pipe["macro_f1"],
        "balanced_accuracy": pipe["balanced_accuracy"],
        "accuracy_gt_crop": gt["accuracy"], "macro_f1_gt_crop": gt["macro_f1"],
        "n_classified": len(rows), "n_fallback_whole_slice": fallback,
        "fallback_fraction": fallback / len(rows),
        "per_class": pipe["per_class"], "confusion": pipe["confusion"],
        "per_patient": per_patient.to_dict("records"),
    }  # fmt: skip
    if scores.fusion is not None:
        fused, fused_gt = scores.fusion.pipeline.report(), scores.fusion.gt.report()
        metrics.update(accuracy_fused=fused["accuracy"], macro_f1_fused=fused["macro_f1"],
                       accuracy_gt_crop_fused=fused_gt["accuracy"], fuse_weight=scores.fusion.weight,
                       confusion_fused=fused["confusion"])  # fmt: skip
        figure = plot_confusion_matrix(fused["confusion"], pipe_acc.class_names)
        save_figure(figure, RunDir(out_dir).confusion_fused)
    save_figure(plot_confusion_matrix(pipe["confusion"], pipe_acc.class_names), RunDir(out_dir).confusion)
    atomic_write_json(RunDir(out_dir).metrics, metrics)
    return metrics


def aggregate_pipeline(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"task": "pipeline", "n_folds", "mean", "std", "folds"}`` over the folds' metrics."""
    mean, std = {}, {}
    for key in PIPELINE_KEYS:
        values = np.array([r[key] for r in results if r.get(key) is not None], dtype=float)
        finite = values[~np.isnan(values)]
        mean[key] = float(finite.mean()) if finite.size else None
        std[key] = float(finite.std()) if finite.size else None
    folds = [{k: v for k, v in r.items() if k != "per_patient"} for r in results]
    return {"task": "pipeline", "n_folds": len(results), "mean": mean, "std": std, "folds": folds}


def evaluate_pipeline(
    seg: str | Path,
    cls: str | Path,
    out: str | Path,
    postprocess: bool = True,
    fuse_weight: float | None = None,
) -> dict[str, Any]:
    """Evaluate the pipeline on every fold that both runs finished (CV folders or single runs).

    Args:
        seg: segmentation run (``fold<k>/`` CV folder or a single-fold run).
        cls: ROI classification run trained on the same splits.
        out: output folder (see the module docstring).
        postprocess: keep the largest component of the predicted mask and fill its holes.
        fuse_weight: also score the classifier averaged with a region-feature forest (the CNN's
            share of the probabilities); the forest's features come from the same masks.

    Returns:
        The aggregate written to ``out/cv_metrics.json``.
    """
    seg_runs, cls_runs = fold_runs(seg), fold_runs(cls)
    common = sorted(set(seg_runs) & set(cls_runs))
    if not common:
        raise DataError(
            cls, f"shares no finished fold with {seg} (folds {sorted(seg_runs)} vs {sorted(cls_runs)})"
        )
    out = Path(out)
    results = [
        evaluate_pipeline_fold(seg_runs[k], cls_runs[k], RunDir(out).fold(k).path, postprocess, fuse_weight)
        for k in common
    ]
    summary = aggregate_pipeline(results)
    atomic_write_json(RunDir(out).cv_metrics, summary)
    table = pd.DataFrame([{k: r.get(k) for k in ("fold", *PIPELINE_KEYS, "n_classified")} for r in results])
    atomic_write(RunDir(out).cv_folds, lambda tmp: table.to_csv(tmp, index=False))
    return summary
