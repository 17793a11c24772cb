"""Metrics as pure functions plus thin accumulators that build per-case tables."""

from braintumor.evaluation.classification import (
    ClassificationAccumulator,
    calls_report,
    classification_report,
    consensus_report,
    expected_calibration_error,
    label_map,
    patient_consensus,
)
from braintumor.evaluation.postprocess import (
    fill_holes,
    keep_largest_component,
    postprocess,
    postprocess_by_patient,
    postprocess_masks,
)
from braintumor.evaluation.segmentation import (
    SegmentationAccumulator,
    as_binary_mask,
    confusion_counts,
    hd95,
    scores_from_counts,
    segmentation_scores,
)

__all__ = [
    "ClassificationAccumulator",
    "SegmentationAccumulator",
    "as_binary_mask",
    "calls_report",
    "classification_report",
    "confusion_counts",
    "consensus_report",
    "expected_calibration_error",
    "fill_holes",
    "hd95",
    "keep_largest_component",
    "label_map",
    "patient_consensus",
    "postprocess",
    "postprocess_by_patient",
    "postprocess_masks",
    "scores_from_counts",
    "segmentation_scores",
]
