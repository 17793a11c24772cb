"""Load a model bundle: segmenter (+ optional ROI classifier, + optional whole-slice gate), or a
whole-slice classifier alone, in one folder/zip.

Layout (flat; every file listed with its sha256 in ``manifest.json``)::

    bundle.json                      name, version, created, expansion, classes, per-model
                                     preprocessing and training metrics, analysis defaults
    seg.safetensors  seg.json        segmentation weights + their training metadata (absent in
                                     classify-only bundles)
    cls.safetensors  cls.json        optional ROI classifier (tumour type); the whole-slice
                                     classifier of a classify-only bundle
    gate.safetensors gate.json       optional whole-slice tumour/no-tumour classifier
    forest.safetensors forest.json   optional region-feature random forest fused with the classifier
                                     (``"fusion"`` in bundle.json; :mod:`~braintumor.bundle.forest`)
    seg.onnx  cls.onnx  gate.onnx    optional, written by ``braintumor export B --format onnx``
    input_profile.safetensors        optional: what the training slices look like, for the input
                                     check (``braintumor bundle profile``;
                                     :mod:`~braintumor.bundle.input_check`); older packages ignore it

**Segmentation-only bundles** (e.g. FLAIR LGG, whose data has no tumour-type labels) leave out
``cls``: their ``bundle.json`` records ``"classes": []`` and ``"expansion": null`` (both keys are
always present) and ``"format_version": 2``, so that packages older than this feature refuse them
with "upgrade braintumor" rather than a confusing error; bundles with a classifier stay at
version 1. Analysis then labels tumour slices ``"tumour"`` (:data:`~braintumor.inference.results.
TUMOUR_LABEL`) with no class probabilities. A gate may accompany a segmenter alone: it vetoes
tumour-free slices exactly as in a full bundle.

**Classify-only bundles** (e.g. a Kaggle-style glioma / meningioma / notumor / pituitary
classifier of whole slices) hold ``cls`` alone, a whole-slice classifier (its ``roi_expansion``
None): ``"expansion": null``, ``"classes"`` its classes and ``"format_version": 4``, so that older
packages, which require a segmenter, refuse them with "upgrade braintumor". Analysis classifies each
slice whole, through the same forward pass and flip TTA as the gate
(:class:`~braintumor.inference.pipeline.SliceEngine`), and makes no mask.

**Fused bundles** record ``"fusion": {"weight_cnn", "features", "trees", "fitted_on"}`` and hold a
forest over the classifier's classes: analysis averages the classifier's probabilities (weight
``weight_cnn``) with the forest's on each tumour's region features. They are ``"format_version": 3``
so that older packages refuse them rather than silently classify with the CNN alone; without the
key a bundle has no fusion.

**Classifier ensembles** hold ROI classifiers beyond ``cls`` as ``cls2``, ``cls3``... (files
``cls2.safetensors`` / ``cls2.json``...), trained alike on crops at other expansion factors:
analysis crops each tumour once per member at that member's own factor and averages the members'
probabilities before any fusion (every member and flip weighing the same, or, with the analysis
default ``mask_confidence_floor``, the crop members weighed by the segmenter's confidence in its
mask: :func:`~braintumor.runtime.fusion.confidence_weighted`); ``cls`` stays the
primary (``expansion``, Grad-CAM, the forest's training patients). They are ``"format_version": 5``
so that older packages refuse them rather than classify with ``cls`` alone.

Loading verifies every hash, validates every key and shape, and never unpickles code: weights
are safetensors (float16 ones are cast back to float32), metadata is JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from braintumor.bundle.checks import check_compatible, check_members, no_tumour_class, read_card
from braintumor.bundle.forest import RegionForest, read_fusion
from braintumor.bundle.input_check import PROFILE_FILE, InputProfile
from braintumor.bundle.store import MANIFEST, BundleError, BundleReader
from braintumor.config import Preprocessing
from braintumor.models.card import ModelCard

BUNDLE_FORMAT = "braintumor-bundle"
FULL_FORMAT_VERSION = 1  # written for bundles with a classifier (readable by older packages)
SEGMENT_ONLY_FORMAT_VERSION = 2  # the classifier may be absent
FUSION_FORMAT_VERSION = 3  # a region-feature forest is fused with the classifier
CLASSIFY_ONLY_FORMAT_VERSION = 4  # a whole-slice classifier alone, no segmenter
ENSEMBLE_FORMAT_VERSION = 5  # ROI classifiers beyond cls: cls2, cls3...
FORMAT_VERSION = ENSEMBLE_FORMAT_VERSION  # the newest this package reads
ROLES = ("seg", "cls", "gate")
_MEMBER_ROLE = re.compile(r"cls([2-9]|[1-9][0-9])")


def classifier_role(index: int) -> str:
    """The role of an ensemble's ``index``-th ROI classifier (0-based): ``cls``, ``cls2``, ``cls3``..."""
    return "cls" if index == 0 else f"cls{index + 1}"


def _ordered_roles(names: Any) -> list[str]:
    """Known roles among ``names``: seg, cls, gate, then the ensemble's cls2, cls3... in order."""
    members = sorted((r for r in names if _MEMBER_ROLE.fullmatch(str(r))), key=lambda r: int(r[3:]))
    return [r for r in ROLES if r in names] + members


DEFAULT_ANALYSIS: dict[str, Any] = {
    "min_area_px": 10,
    "gate_threshold": 0.5,
    "largest_component": True,
    "fill_holes": True,
    "tta_flips": ["none", "h"],
}
_REQUIRED_INFO = ("format", "format_version", "name", "version", "created", "expansion", "classes", "models")


@dataclass
class BundleModel:
    """One network of a bundle: its model card, float32 eval-mode torch module, optional ONNX bytes."""

    role: str
    card: ModelCard
    net: nn.Module
    where: str
    onnx: bytes | None = None

    @property
    def prep(self) -> Preprocessing:
        """What the network's inputs went through in training."""
        return self.card.preprocessing

    @property
    def in_channels(self) -> int:
        return self.card.in_channels

    @property
    def image_channels(self) -> int:
        """Channels taken from the slice: ``in_channels`` less any ``roi_coords`` position channels."""
        return self.card.image_channels

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def model_name(self) -> str:
        return self.card.model.name


@dataclass
class Bundle:
    """A loaded, verified bundle. ``models`` maps role (seg, and optionally cls, gate; or cls
    alone) to :class:`BundleModel`; ``forest`` is the region-feature forest of a fused bundle."""

    path: Path
    info: dict[str, Any]
    models: dict[str, BundleModel] = field(default_factory=dict)
    forest: RegionForest | None = None
    input_profile: InputProfile | None = None

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def has_classifier(self) -> bool:
        """Whether the bundle holds a classifier (``cls``: a ROI classifier beside a segmenter, or
        the whole-slice classifier of a classify-only bundle); False for segmentation-only bundles."""
        return "cls" in self.models

    @property
    def has_segmenter(self) -> bool:
        """Whether the bundle holds a segmenter (``seg``); False for classify-only bundles, whose
        analyses make no mask."""
        return "seg" in self.models

    @property
    def classifies_whole_slices(self) -> bool:
        """Whether the bundle is classify-only: its classifier labels whole slices, without a mask."""
        return self.has_classifier and not self.has_segmenter

    @property
    def classifier_roles(self) -> list[str]:
        """The ROI classifiers whose probabilities analysis averages: ``cls``, then an ensemble's
        ``cls2``, ``cls3``... (empty without a classifier)."""
        return [r for r in _ordered_roles(self.models) if r.startswith("cls")]

    @property
    def whole_slice_roles(self) -> list[str]:
        """Roles of the models that read whole slices, not tumour crops: the gate, or the classifier
        of a classify-only bundle (they share one input preparation and forward pass)."""
        models = self.models
        return [r for r in ("cls", "gate") if r in models and models[r].prep.roi_expansion is None]

    @property
    def expansion(self) -> float | None:
        """ROI expansion factor of the classifier's crops; None without a ROI classifier."""
        value = self.info["expansion"]
        return None if value is None else float(value)

    @property
    def classes(self) -> list[str]:
        """The classifier's classes (empty without a classifier)."""
        return list(self.info["classes"])

    @property
    def fusion(self) -> dict[str, Any] | None:
        """The ``fusion`` record (``weight_cnn``, ``features``, ``trees``, ``fitted_on``); None
        when the classifier is used alone."""
        value = self.info.get("fusion")
        return dict(value) if value else None

    @property
    def gate(self) -> BundleModel | None:
        return self.models.get("gate")

    @property
    def no_tumour_class(self) -> str:
        """Label given to slices without tumour (the gate's no-tumour class, else ``notumor``)."""
        gate = self.gate
        found = no_tumour_class(gate.classes) if gate else no_tumour_class(self.classes)
        return found or "notumor"

    @property
    def analysis(self) -> dict[str, Any]:
        """Analysis defaults (min area, gate threshold, post-processing, TTA flips)."""
        return {**DEFAULT_ANALYSIS, **self.info.get("analysis", {})}

    @property
    def has_onnx(self) -> bool:
        return all(m.onnx is not None for m in self.models.values())


PACKAGED_BUNDLES = ("t1ce", "flair-lgg", "kaggle4")


def default_bundle_path(kind: str = "t1ce") -> Path:
    """A bundle shipped inside the package, ``braintumor/bundles/<kind>/``: ``t1ce`` (figshare
    segmenter + tumour-region classifier + Kaggle gate), ``flair-lgg`` (LGG FLAIR segmenter) or
    ``kaggle4`` (Kaggle 4-class whole-slice classifier, no segmenter).

    Raises:
        BundleError: unknown kind, or not installed (the message says how to pass one instead).
    """
    if kind not in PACKAGED_BUNDLES:
        raise BundleError(f"{kind!r} is not a packaged bundle; choose one of {', '.join(PACKAGED_BUNDLES)}")
    path = Path(str(resources.files("braintumor"))) / "bundles" / kind
    if not (path / "manifest.json").is_file():
        raise BundleError(
            f"{path}: the default {kind!r} model bundle is not installed in this package; pass one "
            "with --bundle B (make one with `braintumor bundle create --seg RUN --cls RUN --out B`)"
        )
    return path


def resolve_bundle_path(path: str | Path | None) -> Path:
    """``path`` itself when it exists; a packaged bundle's name (``t1ce``, ``flair-lgg``) otherwise;
    None means the packaged ``t1ce``."""
    if path is None:
        return default_bundle_path()
    if not Path(path).exists() and str(path) in PACKAGED_BUNDLES:
        return default_bundle_path(str(path))
    return Path(path)


def load_bundle(path: str | Path, load_onnx: bool = False) -> Bundle:
    """Read and verify a bundle folder or ``.zip``.

    Args:
        path: bundle folder or zip.
        load_onnx: also read the ``<role>.onnx`` files (error if the manifest lacks them).

    Raises:
        BundleError: missing/tampered file, bad metadata, weights that do not fit their model,
            or models that cannot work together; the message names the file.
    """
    reader = BundleReader(path)
    info = reader.read_json("bundle.json")
    _check_info(info, reader.where("bundle.json"))
    bundle = Bundle(Path(path), info)
    for role in _ordered_roles(info["models"]):
        bundle.models[role] = _load_model(reader, role, info, load_onnx)
    cards = {r: m.card for r, m in bundle.models.items()}
    where = {r: f"{r}.json" for r in cards}
    check_compatible(cards.get("seg"), cards.get("cls"), cards.get("gate"), where)
    check_members([cards[r] for r in bundle.classifier_roles], [where[r] for r in bundle.classifier_roles])
    if "cls" in cards:
        roi_expansion = cards["cls"].preprocessing.roi_expansion
        if roi_expansion != bundle.expansion:
            raise BundleError(
                f"{reader.where('bundle.json')}: expansion {bundle.expansion} differs from the "
                f"classifier's roi_expansion {roi_expansion}"
            )
        if bundle.classes != list(cards["cls"].classes):
            raise BundleError(f"{reader.where('bundle.json')}: 'classes' differ from cls.json's classes")
    if info.get("fusion") is not None:
        bundle.forest = read_fusion(reader, info)
    if reader.has(PROFILE_FILE):
        bundle.input_profile = InputProfile.from_bytes(reader.read(PROFILE_FILE), reader.where(PROFILE_FILE))
    return bundle


def _check_info(info: dict[str, Any], where: str) -> None:
    missing = [k for k in _REQUIRED_INFO if k not in info]
    if missing:
        raise BundleError(f"{where}: lacks {missing}; not a braintumor bundle")
    if info["format"] != BUNDLE_FORMAT:
        raise BundleError(f"{where}: format {info['format']!r}; expected {BUNDLE_FORMAT!r}")
    if not isinstance(info["format_version"], int) or info["format_version"] > FORMAT_VERSION:
        raise BundleError(
            f"{where}: format_version {info['format_version']!r} is newer than this package reads "
            f"({FORMAT_VERSION}); upgrade braintumor"
        )
    models = info["models"]
    if (
        not isinstance(models, dict)
        or len(_ordered_roles(models)) != len(models)
        or ("seg" not in models and set(models) != {"cls"})
        or (any(_MEMBER_ROLE.fullmatch(str(r)) for r in models) and "cls" not in models)
    ):
        raise BundleError(
            f"{where}: 'models' must hold 'seg' and optionally 'cls' (with ensemble members cls2, "
            "cls3...) and 'gate', or 'cls' alone (a whole-slice classifier); got "
            f"{sorted(models) if isinstance(models, dict) else models!r}"
        )
    classes, expansion = info["classes"], info["expansion"]
    if "seg" not in models:
        if expansion is not None:
            raise BundleError(
                f"{where}: a bundle without segmenter must record expansion null, got {expansion!r}"
            )
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise BundleError(f"{where}: 'classes' must list the classifier's class names, got {classes!r}")
        return
    if "cls" not in models:
        if expansion is not None or classes != []:
            raise BundleError(
                f"{where}: a bundle without a classifier must record expansion null and classes [], "
                f"got expansion={expansion!r}, classes={classes!r}"
            )
        return
    if not isinstance(expansion, int | float) or isinstance(expansion, bool) or expansion < 1:
        raise BundleError(f"{where}: expansion={expansion!r}; expected a number >= 1")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise BundleError(f"{where}: 'classes' must be a list of names, got {classes!r}")


def _load_model(reader: BundleReader, role: str, info: dict[str, Any], load_onnx: bool) -> BundleModel:
    """Verify and build one role's network (float32, eval mode)."""
    from safetensors.torch import load as load_safetensors

    meta_name, weights_name = f"{role}.json", f"{role}.safetensors"
    card = read_card(reader.read_json(meta_name), reader.where(meta_name))
    if _preprocessing_of(info["models"][role]) != card.preprocessing:
        raise BundleError(
            f"{reader.where('bundle.json')}: preprocessing of {role!r} differs from {meta_name}; "
            "the bundle is inconsistent"
        )
    data = reader.read(weights_name)
    try:
        state = load_safetensors(data)
    except Exception as exc:
        raise BundleError(f"{reader.where(weights_name)}: not a readable safetensors file ({exc})") from None
    state = {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}
    net = build_from_card(card, state, reader.where(weights_name))
    onnx = None
    if load_onnx:
        name = f"{role}.onnx"
        if not reader.has(name):
            raise BundleError(
                f"{reader.where(name)}: this bundle has no ONNX models; run "
                f"`braintumor export {reader.path} --format onnx` first"
            )
        onnx = reader.read(name)
    return BundleModel(role, card, net, reader.where(weights_name), onnx)


def _preprocessing_of(entry: Any) -> Preprocessing | None:
    """The preprocessing a ``bundle.json`` model entry records (None when it has none or a bad one)."""
    try:
        return Preprocessing.from_dict(entry["preprocessing"])
    except (KeyError, TypeError, ValueError):
        return None


def build_from_card(card: ModelCard, state: dict[str, torch.Tensor], where: str) -> nn.Module:
    """Build the registered network ``card`` describes and load ``state`` strictly."""
    from braintumor.errors import ConfigError
    from braintumor.models.network import build_network

    cfg = card.model
    try:
        net = build_network(cfg, card.in_channels, card.n_outputs)
    except (ConfigError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: cannot build the model its metadata describes ({exc})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise BundleError(f"{where}: weights do not fit the {cfg.name!r} model ({' '.join(first)})") from None
    return net.float().eval()


def bundle_info(path: str | Path) -> dict[str, Any]:
    """Load (and so fully verify) a bundle; return ``bundle.json`` plus file sizes and ONNX status."""
    bundle = load_bundle(path)
    reader = BundleReader(path)
    files = {}
    for fname in reader.files:
        size = len(reader.read(fname))
        files[fname] = {"bytes": size, "sha256": reader.files[fname]}
    return {
        **bundle.info,
        "path": str(path),
        "verified": True,
        "has_classifier": bundle.has_classifier,
        "has_segmenter": bundle.has_segmenter,
        "fusion": bundle.fusion,
        "onnx": sorted(f for f in reader.files if f.endswith(".onnx")),
        "no_tumour_class": bundle.no_tumour_class,
        "files": files,
        "manifest": MANIFEST,
    }
