"""Binary segmentation metrics: pure functions and a per-slice / per-patient accumulator.

Overlap metrics come from the confusion counts TP, FP and FN of the foreground (tumour) voxels;
the 95th-percentile Hausdorff distance (HD95) comes from MONAI
(:func:`monai.metrics.compute_hausdorff_distance` with ``percentile=95``, symmetric, Euclidean,
in voxel units unless a spacing is given).

Empty-mask convention (one rule: a 0/0 ratio scores 1 only when the case is right, i.e. both
masks are empty; a case with tumour on one side only scores 0 on every overlap metric, so a model
that never predicts tumour cannot earn a perfect precision):

=========  ==========  =================  =================  ===========  ===========  ======
pred       truth       dice               iou                precision    recall       hd95
=========  ==========  =================  =================  ===========  ===========  ======
empty      empty       1                  1                  1            1            NaN
empty      non-empty   0                  0                  0            0            NaN
non-empty  empty       0                  0                  0            0            NaN
non-empty  non-empty   2TP/(2TP+FP+FN)    TP/(TP+FP+FN)      TP/(TP+FP)   TP/(TP+FN)   MONAI
=========  ==========  =================  =================  ===========  ===========  ======

HD95 is undefined (NaN) whenever either mask is empty; summaries average it with ``nanmean``.
A slice whose mask *file* is missing has no truth at all: it is not scored (nor trained on), see
:meth:`braintumor.data.cache.ArrayStore.with_masks`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from braintumor.data.roi import foreground_box

ArrayLike = np.ndarray | torch.Tensor
METRICS = ("dice", "iou", "precision", "recall", "hd95")


def as_binary_mask(mask: ArrayLike, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a numpy bool array; values must be bool or 0/1.

    Raises:
        ValueError: if the mask holds values other than 0 and 1 (threshold probabilities first).
    """
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if np.any((arr != 0) & (arr != 1)):
        raise ValueError(
            f"{name}: expected a binary mask of 0/1 or bool values, got values in "
            f"[{arr.min()}, {arr.max()}] (dtype {arr.dtype}); threshold probabilities first, "
            "e.g. mask = probs > 0.5"
        )
    return arr.astype(bool)


def confusion_counts(pred: ArrayLike, target: ArrayLike) -> tuple[int, int, int]:
    """Return the foreground counts ``(tp, fp, fn)`` of two binary masks of the same shape."""
    p = as_binary_mask(pred, "pred")
    t = as_binary_mask(target, "target")
    _check_same_shape(p, t)
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Dice, IoU, precision and recall from confusion counts, with the module's empty-mask rule."""
    if tp + fp + fn == 0:  # both masks empty: a correct "no tumour"
        return {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    return {
        "dice": 2 * tp / (2 * tp + fp + fn),
        "iou": tp / (tp + fp + fn),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


def hd95(pred: ArrayLike, target: ArrayLike, spacing: Sequence[float] | None = None) -> float:
    """Symmetric 95th-percentile Hausdorff distance between two binary masks (H×W or D×H×W).

    Args:
        pred: predicted mask, bool or 0/1.
        target: reference mask of the same shape.
        spacing: voxel size per axis; ``None`` measures in voxels.

    Returns:
        The distance as a float; NaN when either mask is empty.
    """
    p = as_binary_mask(pred, "pred")
    t = as_binary_mask(target, "target")
    _check_same_shape(p, t)
    if not p.any() or not t.any():
        return float("nan")
    return float(_monai_hd95(p[None], t[None], spacing)[0])


def segmentation_scores(
    pred: ArrayLike, target: ArrayLike, spacing: Sequence[float] | None = None
) -> dict[str, float]:
    """All metrics of one binary mask pair (H×W or D×H×W, numpy or torch, bool or 0/1).

    Returns:
        ``{"dice", "iou", "precision", "recall", "hd95"}`` as floats; see the module docstring for
        the empty-mask convention.
    """
    p = as_binary_mask(pred, "pred")
    t = as_binary_mask(target, "target")
    scores = scores_from_counts(*confusion_counts(p, t))
    scores["hd95"] = hd95(p, t, spacing)
    return scores


def _monai_hd95(preds: np.ndarray, targets: np.ndarray, spacing: Sequence[float] | None) -> np.ndarray:
    """HD95 for a batch (B×spatial) of non-empty mask pairs via MONAI.

    Each pair is first cropped to the bounding box of its union plus a one-voxel background margin,
    exactly as MONAI crops internally, but in numpy: this makes the call about 10× faster on CPU.
    """
    from monai.metrics import compute_hausdorff_distance  # lazy: importing MONAI takes seconds

    out = np.empty(preds.shape[0], dtype=np.float64)
    with warnings.catch_warnings():
        # MONAI 1.5-1.6 passes its own deprecated argument internally; nothing for us to change
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
            box = foreground_box(pred | target)
            assert box is not None  # both-empty pairs were handled above
            pair = [
                torch.from_numpy(np.pad(m[box], 1)[None, None].astype(np.float32)) for m in (pred, target)
            ]
            distance = compute_hausdorff_distance(
                pair[0],
                pair[1],
                include_background=True,
                percentile=95,
                spacing=None if spacing is None else [float(s) for s in spacing],
            )
            out[i] = float(distance.reshape(-1)[0])
    return out


def _check_same_shape(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")


def _as_slice_batch(batch: ArrayLike, name: str) -> np.ndarray:
    """B×1×H×W or B×H×W binary batch -> B×H×W bool."""
    arr = as_binary_mask(batch, name)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a batch of shape B×1×H×W or B×H×W, got {tuple(arr.shape)}")
    return arr


@dataclass
class _PatientState:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    true_volume: int = 0
    pred_volume: int = 0
    slice_keys: list[float] = field(default_factory=list)
    packed_preds: list[np.ndarray] = field(default_factory=list)
    packed_truths: list[np.ndarray] = field(default_factory=list)
    volume_hd95: float | None = None  # cached until the patient gets another slice


class SegmentationAccumulator:
    """Collects per-slice scores and per-patient volumetric counts over a data set.

    Per patient it keeps running sums of TP, FP and FN, so the volumetric Dice (all slices of a
    patient stacked into one volume, as the LGG reference computes it) needs no stored masks.
    For the per-patient HD95, ``store_masks=True`` (default) keeps each slice's masks as packed
    bits (``np.packbits``, 1 bit per pixel) and computes a 3D HD95 on the stacked volume; with
    ``store_masks=False`` nothing is stored and the per-patient HD95 is the NaN-aware mean of the
    per-slice HD95 values.

    Slices are stacked in the order given by ``slice_indices`` when passed to :meth:`add`,
    otherwise in the order added; the order matters only for the 3D HD95.

    Args:
        spacing: voxel size (depth, height, width) for HD95; ``None`` measures in voxels.
        store_masks: keep packed masks for a volumetric per-patient HD95.
        compute_hd95: with False, HD95 is NaN everywhere (cheap Dice-only validation during training).
    """

    def __init__(
        self, spacing: Sequence[float] | None = None, store_masks: bool = True, compute_hd95: bool = True
    ) -> None:
        if spacing is not None and len(spacing) != 3:
            raise ValueError(f"spacing must be (depth, height, width), got {tuple(spacing)}")
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.store_masks = store_masks
        self.compute_hd95 = compute_hd95
        self._rows: list[dict[str, Any]] = []
        self._patients: dict[str, _PatientState] = {}
        self._slice_shape: tuple[int, ...] | None = None

    def add(
        self,
        pred_batch: ArrayLike,
        target_batch: ArrayLike,
        patient_ids: Sequence[str],
        sample_ids: Sequence[str],
        slice_indices: Sequence[float] | None = None,
    ) -> None:
        """Add a batch of 2D slices.

        Args:
            pred_batch: B×1×H×W or B×H×W binary predictions (bool or 0/1).
            target_batch: reference masks of the same shape.
            patient_ids: B patient ids.
            sample_ids: B sample ids.
            slice_indices: optional B slice positions, used to order slices in the volume.
        """
        preds = _as_slice_batch(pred_batch, "pred_batch")
        truths = _as_slice_batch(target_batch, "target_batch")
        _check_same_shape(preds, truths)
        n = preds.shape[0]
        keys = list(range(len(self._rows), len(self._rows) + n))
        keys_f = [float(k) for k in (slice_indices if slice_indices is not None else keys)]
        if len(patient_ids) != n or len(sample_ids) != n or len(keys_f) != n:
            raise ValueError(
                f"got a batch of {n} masks but {len(patient_ids)} patient_ids, "
                f"{len(sample_ids)} sample_ids and {len(keys_f)} slice_indices; pass one per mask"
            )
        if self.store_masks:
            self._check_slice_shape(preds.shape[1:])
        slice_hd95 = self._batch_hd95(preds, truths)
        for i in range(n):
            self._add_slice(preds[i], truths[i], str(patient_ids[i]), str(sample_ids[i]))
            self._rows[-1]["hd95"] = float(slice_hd95[i])
            state = self._patients[str(patient_ids[i])]
            state.slice_keys.append(keys_f[i])
            state.volume_hd95 = None
            if self.store_masks:
                state.packed_preds.append(np.packbits(preds[i]))
                state.packed_truths.append(np.packbits(truths[i]))

    def _add_slice(self, pred: np.ndarray, truth: np.ndarray, patient: str, sample: str) -> None:
        tp, fp, fn = confusion_counts(pred, truth)
        state = self._patients.setdefault(patient, _PatientState())
        state.tp += tp
        state.fp += fp
        state.fn += fn
        state.true_volume += tp + fn
        state.pred_volume += tp + fp
        row = {"sample_id": sample, "patient_id": patient, **scores_from_counts(tp, fp, fn)}
        row.update(true_area=tp + fn, pred_area=tp + fp)
        self._rows.append(row)

    def _batch_hd95(self, preds: np.ndarray, truths: np.ndarray) -> np.ndarray:
        out = np.full(preds.shape[0], np.nan)
        if not self.compute_hd95:
            return out
        both = np.flatnonzero(preds.any(axis=(1, 2)) & truths.any(axis=(1, 2)))
        if both.size:
            spacing = None if self.spacing is None else self.spacing[1:]
            out[both] = _monai_hd95(preds[both], truths[both], spacing)
        return out

    def _check_slice_shape(self, shape: tuple[int, ...]) -> None:
        if self._slice_shape is None:
            self._slice_shape = shape
        elif shape != self._slice_shape:
            raise ValueError(
                f"slice shape changed from {self._slice_shape} to {shape}; a volumetric HD95 "
                "needs equal slice sizes: resize the masks or use store_masks=False"
            )

    def per_slice(self) -> pd.DataFrame:
        """One row per slice: sample_id, patient_id, dice, iou, precision, recall, hd95,
        true_area, pred_area (areas in pixels)."""
        columns = ["sample_id", "patient_id", *METRICS, "true_area", "pred_area"]
        return pd.DataFrame(self._rows, columns=columns)

    def per_patient(self) -> pd.DataFrame:
        """One row per patient, volumetric: patient_id, n_slices, dice, iou, precision, recall,
        hd95, true_volume, pred_volume (volumes in voxels)."""
        slices = self.per_slice()
        rows = []
        for patient, state in self._patients.items():
            row: dict[str, Any] = {"patient_id": patient, "n_slices": len(state.slice_keys)}
            row.update(scores_from_counts(state.tp, state.fp, state.fn))
            if self.store_masks and self.compute_hd95:
                row["hd95"] = self._volume_hd95(state)
            else:
                values = slices.loc[slices["patient_id"] == patient, "hd95"].to_numpy(float)
                row["hd95"] = _nanmean(values)
            row.update(true_volume=state.true_volume, pred_volume=state.pred_volume)
            rows.append(row)
        columns = ["patient_id", "n_slices", *METRICS, "true_volume", "pred_volume"]
        return pd.DataFrame(rows, columns=columns)

    def _volume_hd95(self, state: _PatientState) -> float:
        if state.volume_hd95 is None:
            state.volume_hd95 = self._compute_volume_hd95(state)
        return state.volume_hd95

    def _compute_volume_hd95(self, state: _PatientState) -> float:
        shape = self._slice_shape or (0, 0)  # set by the first add()
        size = int(np.prod(shape))
        order = np.argsort(state.slice_keys, kind="stable")

        def unpack(packed: list[np.ndarray]) -> np.ndarray:
            planes = [np.unpackbits(packed[i], count=size).reshape(shape) for i in order]
            return np.stack(planes).astype(bool)

        return hd95(unpack(state.packed_preds), unpack(state.packed_truths), self.spacing)

    def summary(self) -> dict[str, float | int]:
        """Per-patient means (NaN-aware) and the spread of the per-patient Dice.

        Keys: dice_per_patient_mean, dice_per_patient_median, dice_per_patient_std (population),
        dice_per_slice_mean, iou, precision, recall, hd95, n_patients, n_slices, and n_hd95: the
        patients behind ``hd95`` (a patient with an empty prediction or truth has none).
        """
        patients = self.per_patient()
        slices = self.per_slice()
        dice = patients["dice"].to_numpy(float)
        return {
            "dice_per_patient_mean": _nanmean(dice),
            "dice_per_patient_median": float(np.nanmedian(dice)) if dice.size else float("nan"),
            "dice_per_patient_std": float(np.nanstd(dice)) if dice.size else float("nan"),
            "dice_per_slice_mean": _nanmean(slices["dice"].to_numpy(float)),
            **{m: _nanmean(patients[m].to_numpy(float)) for m in METRICS[1:]},
            "n_patients": len(patients),
            "n_slices": len(slices),
            "n_hd95": int(np.isfinite(patients["hd95"].to_numpy(float)).sum()),
        }

    def reset(self) -> None:
        """Forget everything added so far."""
        self._rows.clear()
        self._patients.clear()
        self._slice_shape = None


def _nanmean(values: np.ndarray) -> float:
    """Mean ignoring NaN; NaN (without a warning) when nothing is finite."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")
