"""Checks that a bundle's models are well formed and can work together.

What must match between the models, and what need not:

* **Input channels must be equal.** Every model reads the same decoded slice, so a 3-channel
  (LGG pre/FLAIR/post) segmenter cannot share inputs with a 1-channel (T1-CE) classifier. A ROI
  classifier with ``roi_coords`` takes 2 position channels more than the slice has; they are
  not counted.
* **image_size, normalization and percentiles may differ.** Each model's preprocessing (read from
  its own metadata) is applied to the raw slice separately, and the ROI crop is resized to the
  classifier's own ``image_size``, exactly as the training cache built its crops, so the crop
  bridges any size or intensity-recipe difference.
* **Beside a segmenter, the classifier must be a ROI classifier** (``roi_expansion`` set); a
  whole-slice classifier (``roi_expansion`` None) can then only be the tumour/no-tumour gate, which
  must be whole-slice and have a no-tumour class.
* **Without a segmenter (classify-only bundles) the classifier must classify whole slices**: a ROI
  classifier needs the segmenter's masks to crop its input, and a gate or a region-feature forest
  would have no mask to act on, so neither is allowed.
* **The segmenter must be binary** (one output channel: tumour logits); it is optional only when a
  whole-slice classifier stands alone.
* **Ensemble members match their primary** (``cls2``, ``cls3``... beside ``cls``): ROI
  classifiers of the same classes and channels, preprocessed alike but for ``roi_expansion``,
  since one normalised slice feeds every member's crop and their probabilities are averaged.
* **The classifier is optional.** Without one the bundle only segments (tumour slices are labelled
  ``tumour``); a gate may still accompany the segmenter alone, since it only decides whether a
  slice holds a tumour.
"""

from __future__ import annotations

from typing import Any

from braintumor.bundle.store import BundleError
from braintumor.models.card import ModelCard, ModelCardError

NO_TUMOUR_NAMES = (
    *("notumor", "no_tumor", "no-tumor", "notumour", "no_tumour", "no-tumour"),
    *("no", "normal", "healthy", "negative", "none"),
)


def no_tumour_class(classes: list[str]) -> str | None:
    """The class name meaning "no tumour" (``notumor``, ``no``, ``normal``...), if any."""
    for name in classes:
        if name.lower().replace(" ", "") in NO_TUMOUR_NAMES:
            return name
    return None


def read_card(record: Any, where: str) -> ModelCard:
    """The :class:`~braintumor.models.card.ModelCard` of a weights or bundle metadata record
    (BundleError naming ``where`` and the field when it is not one)."""
    try:
        return ModelCard.from_dict(record, where)
    except ModelCardError as exc:
        raise BundleError(str(exc)) from None


def check_compatible(
    seg: ModelCard | None, cls: ModelCard | None, gate: ModelCard | None, where: dict[str, str]
) -> None:
    """Raise BundleError listing every reason the models cannot work together (see module doc).

    Args:
        seg, cls, gate: model cards of the optional segmenter, optional classifier (ROI beside a
            segmenter, whole-slice without one) and optional gate.
        where: role -> display name of its source (run folder or bundle file) for messages.
    """
    if seg is None:
        problems = _classify_only_problems(cls, gate, where)
    else:
        problems = _segmenter_problems(seg, cls, gate, where)
    roles = {"seg": seg, "cls": cls, "gate": gate}
    channels = {role: card.image_channels for role, card in roles.items() if card is not None}
    if len(set(channels.values())) > 1:
        shown = ", ".join(f"{where[r]} takes {c}" for r, c in channels.items())
        problems.append(
            f"the models take different input channels ({shown}); they read the same slices, "
            "so train them on the same channels (data.channels)"
        )
    if problems:
        raise BundleError("models cannot work together:\n  " + "\n  ".join(problems))


def _segmenter_problems(
    seg: ModelCard, cls: ModelCard | None, gate: ModelCard | None, where: dict[str, str]
) -> list[str]:
    """What is wrong with a segmenter and the ROI classifier and gate beside it."""
    problems: list[str] = []
    if seg.task != "segment":
        problems.append(f"{where['seg']}: --seg must be a segmentation model, got task={seg.task!r}")
    elif seg.model.out_channels != 1:
        problems.append(f"{where['seg']}: the segmenter must be binary (out_channels=1)")
    if cls is not None:
        if cls.task != "classify":
            problems.append(f"{where['cls']}: --cls must be a classifier, got task={cls.task!r}")
        elif cls.preprocessing.roi_expansion is None:
            problems.append(
                f"{where['cls']}: is a whole-slice classifier (data.roi_expansion is None); beside a "
                "segmenter it can only be the --gate (or leave out --seg for a classify-only bundle). "
                "Train the ROI classifier with --set data.roi_expansion=1.5"
            )
    if gate is not None:
        if gate.task != "classify":
            problems.append(f"{where['gate']}: --gate must be a classifier, got task={gate.task!r}")
        elif gate.preprocessing.roi_expansion is not None:
            problems.append(f"{where['gate']}: is a ROI classifier; the gate must classify whole slices")
        elif no_tumour_class(list(gate.classes)) is None:
            problems.append(
                f"{where['gate']}: has no no-tumour class among {list(gate.classes)}; expected one of "
                f"{', '.join(NO_TUMOUR_NAMES[:6])}, no, normal"
            )
    return problems


def _classify_only_problems(
    cls: ModelCard | None, gate: ModelCard | None, where: dict[str, str]
) -> list[str]:
    """What is wrong with a bundle without segmenter: it needs a whole-slice classifier and no gate."""
    if cls is None:
        return [
            "no model to bundle: pass --seg RUN (a segmenter, optionally with --cls and --gate) or "
            "--cls RUN alone (a whole-slice classifier)"
        ]
    problems: list[str] = []
    if cls.task != "classify":
        problems.append(f"{where['cls']}: --cls must be a classifier, got task={cls.task!r}")
    elif cls.preprocessing.roi_expansion is not None:
        problems.append(
            f"{where['cls']}: is a ROI classifier (data.roi_expansion={cls.preprocessing.roi_expansion}); "
            "it classifies tumour crops cut around a segmenter's mask, so it needs --seg RUN. A bundle "
            "without --seg takes a whole-slice classifier (trained without data.roi_expansion)"
        )
    if gate is not None:
        problems.append(
            f"{where['gate']}: --gate vetoes a segmenter's tumours and this bundle has no --seg; a "
            "whole-slice classifier with a no-tumour class already says which slices are tumour-free"
        )
    return problems


def check_members(cards: list[ModelCard], where: list[str]) -> None:
    """Raise BundleError unless an ensemble's ROI classifiers (``cards[0]`` the primary ``cls``)
    can be averaged: all ROI classifiers of the primary's classes, channels and preprocessing but
    for ``roi_expansion`` (see module doc)."""
    if len(cards) < 2:
        return
    first = cards[0]
    problems = []
    for card, name in zip(cards[1:], where[1:], strict=True):
        if card.task != "classify" or card.preprocessing.roi_expansion is None:
            problems.append(f"{name}: an ensemble member must be a ROI classifier (data.roi_expansion set)")
            continue
        if list(card.classes) != list(first.classes):
            problems.append(
                f"{name}: classes {list(card.classes)} differ from {where[0]}'s {list(first.classes)}"
            )
        if card.in_channels != first.in_channels:
            problems.append(
                f"{name}: takes {card.in_channels} input channels, {where[0]} {first.in_channels}"
            )
        ours = card.preprocessing.to_dict() | {"roi_expansion": None}
        theirs = first.preprocessing.to_dict() | {"roi_expansion": None}
        differ = sorted(k for k in ours if ours[k] != theirs.get(k))
        if differ:
            problems.append(
                f"{name}: preprocessing differs from {where[0]}'s in {', '.join(differ)}; members may "
                "differ only in data.roi_expansion"
            )
    if problems:
        raise BundleError("the classifiers cannot be averaged:\n  " + "\n  ".join(problems))
