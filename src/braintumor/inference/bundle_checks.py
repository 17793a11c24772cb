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
* **The classifier must be a ROI classifier** (``roi_expansion`` set); a whole-slice classifier
  (``roi_expansion`` None) can only be the tumour/no-tumour gate, which must be whole-slice and
  have a no-tumour class.
* **The segmenter must be binary** (one output channel: tumour logits).
* **The classifier is optional.** Without one the bundle only segments (tumour slices are labelled
  ``tumour``); a gate may still accompany the segmenter alone, since it only decides whether a
  slice holds a tumour.
"""

from __future__ import annotations

from typing import Any

from braintumor.config import NORMALIZATIONS
from braintumor.data.roi import coord_channels
from braintumor.inference.bundle_store import BundleError

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


def check_preprocessing(prep: Any, where: str) -> None:
    """Raise BundleError unless ``prep`` is a complete preprocessing record."""
    if not isinstance(prep, dict):
        raise BundleError(f"{where}: 'preprocessing' is missing or not an object")
    missing = [k for k in ("image_size", "channels", "normalization", "percentiles") if k not in prep]
    if missing:
        raise BundleError(f"{where}: preprocessing lacks {missing}")
    size, channels = prep["image_size"], prep["channels"]
    if not isinstance(size, int) or size < 8:
        raise BundleError(f"{where}: preprocessing.image_size={size!r}; expected an integer >= 8")
    if not isinstance(channels, int) or channels < 0:
        raise BundleError(f"{where}: preprocessing.channels={channels!r}; expected an integer >= 0")
    if prep["normalization"] not in NORMALIZATIONS:
        raise BundleError(
            f"{where}: preprocessing.normalization={prep['normalization']!r}; "
            f"expected one of {NORMALIZATIONS}"
        )
    pct = prep["percentiles"]
    if not (isinstance(pct, list) and len(pct) == 2 and all(isinstance(v, int | float) for v in pct)):
        raise BundleError(f"{where}: preprocessing.percentiles={pct!r}; expected [low, high]")
    expansion = prep.get("roi_expansion")
    if expansion is not None and (not isinstance(expansion, int | float) or expansion < 1):
        raise BundleError(f"{where}: preprocessing.roi_expansion={expansion!r}; expected None or >= 1")
    coords = prep.get("roi_coords", False)
    if not isinstance(coords, bool) or (coords and expansion is None):
        raise BundleError(
            f"{where}: preprocessing.roi_coords={coords!r}; expected a bool, true only with roi_expansion"
        )


def image_channels(meta: dict[str, Any]) -> int:
    """Channels a model reads from the slice: ``in_channels`` less any ``roi_coords`` channels."""
    return int(meta["in_channels"]) - coord_channels(meta["preprocessing"])


def check_meta(meta: dict[str, Any], where: str) -> None:
    """Raise BundleError unless ``meta`` is braintumor weights metadata (task, model, channels...)."""
    from braintumor.errors import ConfigError
    from braintumor.models import model_info

    if meta.get("task") not in ("segment", "classify"):
        raise BundleError(f"{where}: 'task' is {meta.get('task')!r}; expected 'segment' or 'classify'")
    model = meta.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise BundleError(f"{where}: 'model' must be an object with a 'name'")
    try:
        info = model_info(model["name"])
    except ConfigError as exc:
        raise BundleError(f"{where}: {exc}") from None
    if info.task != meta["task"]:
        raise BundleError(f"{where}: model {model['name']!r} is a {info.task} model, not {meta['task']}")
    in_channels = meta.get("in_channels")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise BundleError(f"{where}: 'in_channels'={in_channels!r}; expected a positive integer")
    classes = meta.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise BundleError(f"{where}: 'classes' must be a list of names")
    if meta["task"] == "classify" and len(classes) < 2:
        raise BundleError(f"{where}: a classifier needs at least 2 'classes', got {classes}")
    check_preprocessing(meta.get("preprocessing"), where)
    if image_channels(meta) < 1:
        raise BundleError(
            f"{where}: 'in_channels'={in_channels} leaves no image channel beside roi_coords' 2"
        )


def check_compatible(
    seg: dict[str, Any], cls: dict[str, Any] | None, gate: dict[str, Any] | None, where: dict[str, str]
) -> None:
    """Raise BundleError listing every reason the models cannot work together (see module doc).

    Args:
        seg, cls, gate: weights metadata of the segmenter, optional ROI classifier and optional gate.
        where: role -> display name of its source (run folder or bundle file) for messages.
    """
    problems: list[str] = []
    if seg["task"] != "segment":
        problems.append(f"{where['seg']}: --seg must be a segmentation model, got task={seg['task']!r}")
    elif int(seg["model"].get("out_channels", 1)) != 1:
        problems.append(f"{where['seg']}: the segmenter must be binary (out_channels=1)")
    if cls is not None:
        if cls["task"] != "classify":
            problems.append(f"{where['cls']}: --cls must be a classifier, got task={cls['task']!r}")
        elif cls["preprocessing"].get("roi_expansion") is None:
            problems.append(
                f"{where['cls']}: is a whole-slice classifier (data.roi_expansion is None); it can only "
                "be the --gate. Train the ROI classifier with --set data.roi_expansion=1.5"
            )
    if gate is not None:
        if gate["task"] != "classify":
            problems.append(f"{where['gate']}: --gate must be a classifier, got task={gate['task']!r}")
        elif gate["preprocessing"].get("roi_expansion") is not None:
            problems.append(f"{where['gate']}: is a ROI classifier; the gate must classify whole slices")
        elif no_tumour_class(gate.get("classes", [])) is None:
            problems.append(
                f"{where['gate']}: has no no-tumour class among {gate.get('classes')}; expected one of "
                f"{', '.join(NO_TUMOUR_NAMES[:6])}, no, normal"
            )
    roles = {"seg": seg, "cls": cls, "gate": gate}
    channels = {role: image_channels(meta) for role, meta in roles.items() if meta is not None}
    if len(set(channels.values())) > 1:
        shown = ", ".join(f"{where[r]} takes {c}" for r, c in channels.items())
        problems.append(
            f"the models take different input channels ({shown}); they read the same slices, "
            "so train them on the same channels (data.channels)"
        )
    if problems:
        raise BundleError("models cannot work together:\n  " + "\n  ".join(problems))
