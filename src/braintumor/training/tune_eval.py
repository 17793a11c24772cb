"""Choose a segmentation run's evaluation settings on its fold's validation patients.

Flip TTA, the probability threshold and the mask post-processing (none, the largest 2D component
per slice, or the 3D components of each patient's volume down to a fraction of the largest one)
are scored on the validation patients, never on the test patients, and the best by mean
per-patient Dice is kept; ties keep the earlier, simpler setting in grid order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from braintumor.config import EvalConfig, to_dict
from braintumor.data.dataset import CachedDataset
from braintumor.evaluation import SegmentationAccumulator
from braintumor.runtime.forward import logit_of
from braintumor.training.predictions import SlicePredictions, postprocessed, predict_slices

THRESHOLDS = (0.5, 0.4, 0.3, 0.6)
# (postprocess_scope, largest_component, component_fraction); holes are filled when components are kept
POSTPROCESSING = (
    ("slice", False, 1.0),
    ("patient", True, 1.0),
    ("patient", True, 0.5),
    ("patient", True, 0.2),
    ("patient", True, 0.1),
    ("slice", True, 1.0),
)


def candidates(base: EvalConfig, volumetric: bool = True) -> list[EvalConfig]:
    """The grid, simplest first: TTA off/on × thresholds × post-processing (the per-patient 3D
    settings only for ``volumetric`` data, whose slices stack into a volume)."""
    grid = []
    for tta in (False, True):
        for threshold in THRESHOLDS:
            for scope, largest, fraction in POSTPROCESSING:
                if scope == "patient" and not volumetric:
                    continue
                grid.append(replace(base, tta=tta, threshold=threshold, postprocess_scope=scope,
                                    largest_component=largest, component_fraction=fraction,
                                    fill_holes=largest))  # fmt: skip
    return grid


def _mean_patient_dice(p: SlicePredictions, options: EvalConfig) -> float:
    cut = logit_of(options.threshold)
    preds = postprocessed([(x > cut).astype(np.uint8) for x in p.outputs], p.patients, p.keys, options)
    acc = SegmentationAccumulator(store_masks=False, compute_hd95=False)
    acc.add(np.stack(preds), np.stack(p.truths), p.patients, p.samples, p.keys)
    return float(acc.per_patient()["dice"].mean())


def tune_evaluation(
    net: nn.Module,
    val: CachedDataset,
    slices: dict[str, float],
    precision: str,
    base: EvalConfig,
    volumetric: bool = True,
) -> tuple[EvalConfig, pd.DataFrame, dict[str, Any]]:
    """Score every candidate setting on ``val``; return the best, the scored grid and a summary.

    Args:
        net: the run's segmentation network.
        val: the fold's validation patients (with masks).
        slices: sample id -> slice position, to stack each patient's volume in order.
        precision: autocast precision of the forward passes.
        base: the configured settings (its batch size is kept).
        volumetric: whether each patient's slices stack into a volume (LGG; not figshare).
    """
    if len(val) == 0:
        raise ValueError("the fold has no validation patients to tune on (data.val_fraction is 0)")
    predictions = {
        tta: predict_slices(net, val, slices, replace(base, tta=tta), precision, lambda x: x.numpy())
        for tta in (False, True)
    }
    rows, best, best_dice = [], base, -1.0
    for options in candidates(base, volumetric):
        dice = _mean_patient_dice(predictions[options.tta], options)
        settings = {k: v for k, v in to_dict(options).items() if k != "batch_size"}
        rows.append({**settings, "val_dice_per_patient": dice})
        if dice > best_dice:
            best, best_dice = options, dice
    summary = {
        "chosen": to_dict(best), "val_dice_per_patient": best_dice,
        "n_val_patients": len(set(predictions[False].patients)), "n_candidates": len(rows),
    }  # fmt: skip
    return best, pd.DataFrame(rows), summary
