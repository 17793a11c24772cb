"""Turn a decoded :class:`~braintumor.inference.sources.Scan` into each bundle model's inputs.

Each model's preprocessing is read from its metadata and applied to the raw slices exactly as the
training cache did: channels, then normalisation (``percentile-volume`` over the whole volume;
single images fall back to per-image percentiles), then pad-to-square + antialiased resize. The
ROI classifier's input stays at native resolution here; it is cropped once the mask is known.
Whole-slice models (the gate, or the classifier of a classify-only bundle) get their input the same
way, keyed by role in ``whole_slice``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from braintumor.bundle.load import Bundle, BundleModel
from braintumor.config import Preprocessing
from braintumor.data.preprocess import context_positions, pad_to_square, to_channels_first, with_context
from braintumor.data.preprocess import normalised as normalised_slices
from braintumor.errors import DataError
from braintumor.inference.sources import Scan, blank_slices


@dataclass(frozen=True)
class SliceInputs:
    """The N inputs of one scan to a model that reads whole slices: ``inputs[i]`` is slice i
    (C×S×S, resized) stacked with its neighbours in the scan as ``positions[i]`` lists them
    (:func:`~braintumor.data.preprocess.context_positions`), built when asked for, so a 2.5D
    model's (2k+1)-fold input is held for one batch, never for the whole volume."""

    slices: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> np.ndarray:
        """(2k+1)·C×S×S float32: slice ``i`` with its context, lowest slice first."""
        return with_context(self.slices, self.positions[i : i + 1])[0]

    def stacked(self) -> np.ndarray:
        """N×(2k+1)·C×S×S: every input at once (for checks; inference indexes per batch)."""
        return with_context(self.slices, self.positions)


@dataclass
class PreparedScan:
    """Model inputs of one scan (N slices).

    Attributes:
        order: position of the input in the batch.
        seg: the segmenter's N inputs (C×S×S float32 each); None without a segmenter
            (classify-only bundles).
        whole_slice: role -> the N inputs of each whole-slice model (the ``gate``; the ``cls`` of
            a classify-only bundle); empty when there is none.
        cls_native: N×C×H×W float32, normalised for the ROI classifier, not yet cropped; None
            without a ROI classifier (segmentation-only and classify-only bundles).
        blank: N bool, constant slices (skipped).
        input_check: (distance, warning) of the input check when the bundle has a profile
            (:func:`~braintumor.bundle.input_check.input_warning`); computed here, off the
            network's thread.
    """

    scan: Scan
    order: int
    seg: SliceInputs | None
    whole_slice: dict[str, SliceInputs]
    cls_native: np.ndarray | None
    blank: np.ndarray
    input_check: tuple[float, str] | None = None

    @property
    def gate(self) -> SliceInputs | None:
        """The gate's inputs, or None without a gate."""
        return self.whole_slice.get("gate")


_EXAMPLE = {1: "e.g. grayscale T1-CE slices", 3: "e.g. LGG pre-contrast/FLAIR/post-contrast slices"}


def _slices_for(scan: Scan, model: BundleModel) -> np.ndarray:
    """The scan's slices with a channel count the model accepts (else DataError naming the input)."""
    slices = scan.slices
    native, wanted = scan.channels, model.image_channels
    if model.prep.channels > 0 or native == wanted:
        return slices  # to_channels_first converts as in training, or nothing to convert
    if (
        native == 3
        and wanted == 1
        and np.array_equal(slices[..., 0], slices[..., 1])
        and np.array_equal(slices[..., 0], slices[..., 2])
    ):
        return slices[..., 0]  # an RGB file holding a grayscale image
    raise DataError(
        scan.source,
        f"has {native} channel(s) but the {model.role} model was trained on {wanted}-channel images; "
        f"give {wanted}-channel input ({_EXAMPLE.get(wanted, 'as in training')})",
    )


def _channels_first(scan: Scan, model: BundleModel) -> list[np.ndarray]:
    try:
        return [to_channels_first(s, model.prep.channels) for s in _slices_for(scan, model)]
    except ValueError as exc:
        raise DataError(scan.source, f"{exc} for the {model.role} model") from None


def normalised(scan: Scan, model: BundleModel) -> np.ndarray:
    """N×C×H×W float32 slices after the model's channel handling and intensity normalisation."""
    return normalised_all(scan, [model])[model.role]


def normalised_all(scan: Scan, models: list[BundleModel]) -> dict[str, np.ndarray]:
    """:func:`normalised` for every model (role -> array): models with the same channel handling
    share one conversion, and one percentile computation per slice or volume
    (:func:`~braintumor.data.preprocess.normalised`)."""
    groups: dict[tuple[int, int], list[BundleModel]] = {}
    for model in models:
        groups.setdefault((model.prep.channels, model.image_channels), []).append(model)
    out: dict[str, np.ndarray] = {}
    for members in groups.values():
        images = _channels_first(scan, members[0])
        preps = [m.prep for m in members]
        for model, slices in zip(
            members, normalised_slices(images, preps, scan.kind == "volume"), strict=True
        ):
            out[model.role] = np.stack(slices).astype(np.float32, copy=False)
    return out


def resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """N×C×H×W -> N×C×size×size: zero-pad to square, antialiased bilinear resize (as training)."""
    t = pad_to_square(torch.from_numpy(np.ascontiguousarray(images)))
    if t.shape[-1] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.numpy()


def whole_slice_input(slices: np.ndarray, prep: Preprocessing) -> SliceInputs:
    """N×C×H×W normalised slices of one scan -> the inputs of a model that reads whole slices (the
    segmenter, the gate, a whole-slice classifier): resized, and with ``context_slices`` each
    slice stacked with its neighbours in the scan (a single image with copies of itself), as
    :class:`~braintumor.data.dataset.CachedDataset` feeds training."""
    resized = resize_stack(slices, prep.image_size)
    return SliceInputs(resized, context_positions(["volume"] * len(resized), prep.context_slices))


def prepare_scan(scan: Scan, bundle: Bundle, order: int = 0) -> PreparedScan:
    """Every model input of ``scan`` (normalisation shared between models with the same recipe)."""
    members = bundle.classifier_roles[1:]  # an ensemble's members share the primary's input
    norm = normalised_all(scan, [m for r, m in bundle.models.items() if r not in members])
    seg_model = bundle.models.get("seg")
    seg = whole_slice_input(norm["seg"], seg_model.prep) if seg_model else None
    whole = {r: whole_slice_input(norm[r], bundle.models[r].prep) for r in bundle.whole_slice_roles}
    cls_native = norm["cls"] if "cls" in bundle.models and "cls" not in whole else None
    return PreparedScan(scan, order, seg, whole, cls_native, blank_slices(scan))
