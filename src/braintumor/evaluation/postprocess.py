"""Mask clean-up after thresholding: keep the largest connected component (or every component at
least a given fraction of its size), fill holes.

Every function takes a binary mask (numpy or torch, bool or 0/1, any number of dimensions) and
returns the same type, dtype, shape and (for torch) device as its input. Both work inside the
foreground's bounding box (plus a one-voxel background frame): everything outside it is background
connected to the border, so the result equals working on the whole array, at a fraction of the
cost for a small tumour in a large slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from scipy import ndimage

from braintumor.data.roi import foreground_box
from braintumor.evaluation.segmentation import as_binary_mask

MaskT = TypeVar("MaskT", np.ndarray, torch.Tensor)


def _like(result: np.ndarray, original: MaskT) -> MaskT:
    """Cast a bool result back to the type, dtype and device of ``original``."""
    if isinstance(original, torch.Tensor):
        return torch.from_numpy(result).to(device=original.device, dtype=original.dtype)
    return result.astype(original.dtype, copy=False)


def _largest_in_box(binary: np.ndarray, box: tuple[slice, ...], min_fraction: float = 1.0) -> np.ndarray:
    structure = ndimage.generate_binary_structure(binary.ndim, binary.ndim)
    labels, n = ndimage.label(binary[box], structure=structure)
    if n <= 1:
        return binary
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    out = np.zeros_like(binary)
    if min_fraction >= 1.0:
        out[box] = labels == int(np.argmax(sizes))
    else:
        keep = sizes >= min_fraction * sizes.max()
        keep[0] = False
        out[box] = keep[labels]
    return out


def _fill_in_box(binary: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    # a length-1 axis (a 1×H×W mask) is dropped: framed along it, every pixel would touch the frame
    flat = tuple(a for a, n in enumerate(binary.shape) if n == 1)
    core = np.squeeze(binary[box], axis=flat)
    out = binary.copy()
    if core.ndim == 0:
        return out
    framed = np.pad(core, 1)  # a background frame: the box's edge is not enclosed
    filled = ndimage.binary_fill_holes(framed)[(slice(1, -1),) * core.ndim]
    out[box] = np.expand_dims(filled, flat)
    return out


def keep_largest_component(mask: MaskT) -> MaskT:
    """Keep only the largest connected foreground component (full connectivity: 8 in 2D, 26 in
    3D); ties keep the component found first in raster order. An empty mask is returned as is."""
    return postprocess(mask, largest=True, fill=False)


def fill_holes(mask: MaskT) -> MaskT:
    """Fill background regions enclosed by foreground (``scipy.ndimage.binary_fill_holes``; a 3D
    mask is filled in 3D, so a hole must be closed in every direction)."""
    return postprocess(mask, largest=False, fill=True)


def postprocess(mask: MaskT, largest: bool = True, fill: bool = True, min_fraction: float = 1.0) -> MaskT:
    """Apply :func:`keep_largest_component` then :func:`fill_holes`, each if enabled, inside one
    foreground box (the largest component lies within the whole foreground's box).

    ``min_fraction`` below 1 keeps, instead of the largest component alone, every component of at
    least that fraction of the largest one's size (a tumour split in two keeps both parts).
    """
    if not 0.0 <= min_fraction <= 1.0:
        raise ValueError(f"min_fraction={min_fraction}; expected a fraction of the largest component's size")
    binary = as_binary_mask(mask)
    box = foreground_box(binary, margin=1)
    if box is None or not (largest or fill):
        return _like(binary, mask)
    if largest:
        binary = _largest_in_box(binary, box, min_fraction)
    if fill:
        binary = _fill_in_box(binary, box)
    return _like(binary, mask)


def _volume_places(keys: Sequence[float]) -> list[int]:
    """Each sorted slice's plane in its patient's volume: whole-number slice keys keep their gaps
    (a missing or skipped slice separates what lies on either side of it); other keys, repeated
    ones, or keys spanning four times the slice count or more, stack the slices side by side."""
    if all(float(k).is_integer() for k in keys) and len(set(keys)) == len(keys):
        places = [int(k - keys[0]) for k in keys]
        if places[-1] < 4 * len(keys):
            return places
    return list(range(len(keys)))


def postprocess_by_patient(
    masks: Sequence[np.ndarray],
    patient_ids: Sequence[str],
    slice_keys: Sequence[float],
    largest: bool = True,
    fill: bool = True,
    min_fraction: float = 1.0,
) -> list[np.ndarray]:
    """Post-process 2D slice masks patient by patient: each patient's slices are stacked in
    ``slice_keys`` order (whole-number keys keep their gaps as empty planes) and only the volume's
    largest 3D component (26-connected) is kept, as the LGG reference does (with ``min_fraction``
    < 1, every component of at least that fraction of the largest); holes are then filled slice by
    slice. Returns the masks in input order."""
    if not len(masks) == len(patient_ids) == len(slice_keys):
        raise ValueError(
            f"got {len(masks)} masks, {len(patient_ids)} patient ids and {len(slice_keys)} slice keys; "
            "pass one of each per slice"
        )
    out = [np.asarray(m) for m in masks]
    by_patient: dict[str, list[int]] = {}
    for i, pid in enumerate(patient_ids):
        by_patient.setdefault(str(pid), []).append(i)
    for members in by_patient.values():
        order = sorted(members, key=lambda i: slice_keys[i])
        if largest:
            places = _volume_places([slice_keys[i] for i in order])
            stacked = np.zeros((places[-1] + 1, *out[order[0]].shape), out[order[0]].dtype)
            stacked[places] = np.stack([out[i] for i in order])
            volume = postprocess(stacked, largest=True, fill=False, min_fraction=min_fraction)
            for place, i in zip(places, order, strict=True):
                out[i] = volume[place]
        if fill:
            for i in order:
                out[i] = fill_holes(out[i])
    return out


def postprocess_masks(
    masks: Sequence[np.ndarray],
    patient_ids: Sequence[str],
    slice_keys: Sequence[float],
    largest: bool,
    fill: bool,
    min_fraction: float = 1.0,
    scope: str = "slice",
) -> list[np.ndarray]:
    """The one post-processing rule of evaluation and analysis: per 2D slice (``scope="slice"``),
    or per patient volume (``"patient"``: :func:`postprocess_by_patient`). Input order is kept."""
    if not (largest or fill):
        return [np.asarray(m) for m in masks]
    if scope == "patient":
        return postprocess_by_patient(masks, patient_ids, slice_keys, largest, fill, min_fraction)
    if scope != "slice":
        raise ValueError(f"post-processing scope {scope!r}; expected 'slice' or 'patient'")
    return [postprocess(np.asarray(m), largest, fill, min_fraction) for m in masks]
