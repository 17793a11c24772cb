"""Create a model bundle from training runs.

``create_bundle`` copies each run's ``best.safetensors`` + ``best.json`` (optionally as float16),
writes ``bundle.json`` and ``manifest.json``, and refuses models that cannot work together
(see :mod:`braintumor.bundle.checks`); :func:`from_run` builds the same bundle in
memory, so a run can be scored through exactly the code that analyses with its bundle. Without a
classifier the bundle only segments (``classes`` [], ``expansion`` null; see
:mod:`braintumor.bundle.load`); without a segmenter it holds a whole-slice classifier alone and
classifies slices whole (classify-only: no gate, no forest, no mask). With ``fuse_forest`` a
region-feature random forest is fitted on the classifier run's training patients (train + val of
its fold, as
:mod:`braintumor.training.region_forest`) and stored beside it. Several ROI classification runs
make a classifier ensemble (``cls``, ``cls2``...; the first is the primary, see
:mod:`braintumor.bundle.load`). The folder is built beside ``out``
and renamed into place (or zipped), so a failed creation leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from braintumor import __version__
from braintumor.bundle.checks import check_compatible, check_members, read_card
from braintumor.bundle.forest import FOREST_META, FOREST_WEIGHTS, RegionForest
from braintumor.bundle.load import (
    BUNDLE_FORMAT,
    CLASSIFY_ONLY_FORMAT_VERSION,
    DEFAULT_ANALYSIS,
    ENSEMBLE_FORMAT_VERSION,
    FULL_FORMAT_VERSION,
    FUSION_FORMAT_VERSION,
    SEGMENT_ONLY_FORMAT_VERSION,
    Bundle,
    BundleModel,
    build_from_card,
    classifier_role,
)
from braintumor.bundle.store import BundleError, write_manifest
from braintumor.io_utils import atomic_write, atomic_write_json, json_text
from braintumor.models.card import ModelCard
from braintumor.run_dir import RunDir
from braintumor.runtime.fusion import MASK_CONFIDENCE_FLOOR
from braintumor.runtime.tta import tta_views

FP16_MAX = 65504.0
RunPath = str | Path
Classifiers = RunPath | Sequence[RunPath] | None  # one run, or an ensemble's runs


def resolve_run(path: str | Path) -> tuple[Path, Path | None]:
    """A run folder (or its ``.safetensors``) -> (weights file, ``metrics.json`` or None)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        weights = p
        metrics = RunDir.of_weights(p).metrics
    else:
        weights = RunDir(p).best_weights
        metrics = RunDir(p).metrics
    if not weights.is_file():
        raise BundleError(f"{weights}: weights not found; pass a run folder written by `braintumor train`")
    if not weights.with_suffix(".json").is_file():
        raise BundleError(f"{weights.with_suffix('.json')}: weights metadata not found beside the weights")
    return weights, metrics if metrics.is_file() else None


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar numbers and strings of a run's ``metrics.json`` (no per-patient tables)."""
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BundleError(f"{path}: expected a JSON object")
    return value


def _copy_weights(weights: Path, card: ModelCard, dest: Path, fp16: bool) -> None:
    """Write ``dest.safetensors`` (float16 when asked) and ``dest.json`` after checking they load.

    With ``fp16``, a tensor whose values exceed float16's range (e.g. a BatchNorm running variance)
    stays float32; ``stored_dtype`` then says ``float16+float32``.
    """
    from safetensors.torch import load_file, save_file

    try:
        state = load_file(str(weights))
    except Exception as exc:
        raise BundleError(f"{weights}: not a readable safetensors file ({exc})") from None
    build_from_card(card, state, str(weights))  # refuses weights that do not fit their model
    kept = []
    if fp16:
        for key, value in state.items():
            if value.is_floating_point():
                if value.numel() and float(value.abs().max()) > FP16_MAX:
                    kept.append(key)
                else:
                    state[key] = value.to(torch.float16)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest.with_suffix(".safetensors")))
    stored = "float16+float32" if kept else "float16" if fp16 else "float32"
    stored_card = replace(card, stored_dtype=stored, float32_tensors=tuple(kept))
    dest.with_suffix(".json").write_text(json_text(stored_card.to_dict(), indent=2) + "\n")


def cv_record(weights: Path) -> dict[str, Any] | None:
    """The cross-validation a fold run belongs to: ``{"n_folds", "mean", "std", "source"}`` with
    the headline numbers of its ``cv_metrics.json``, or None for a run outside a CV folder or in
    one that scored a single fold (no spread to report)."""
    cv = RunDir.of_weights(weights).cv_parent()
    if cv is None:
        return None
    summary = _read_json(cv.cv_metrics)
    if not isinstance(summary.get("n_folds"), int) or summary["n_folds"] < 2:
        return None
    return {
        "n_folds": summary.get("n_folds"),
        "mean": headline_metrics(summary.get("mean") or {}),
        "std": headline_metrics(summary.get("std") or {}),
        "source": str(cv.path),
    }


def _model_entry(card: ModelCard, weights: Path, metrics: Path | None, source: Path) -> dict[str, Any]:
    record = card.to_dict()
    cv = cv_record(weights)
    return {
        **{k: record[k] for k in ("task", "model", "in_channels", "classes", "preprocessing")},
        "best_score": card.best_score,
        "monitor": card.monitor,
        "metrics": headline_metrics(_read_json(metrics)) if metrics else {},
        **({"cv_metrics": cv} if cv else {}),
        "source": str(source),
    }


def fit_fusion(
    cls_weights: Path, classes: list[str], weight: float, trees: int, seed: int = 0
) -> tuple[RegionForest, dict[str, Any]]:
    """The region-feature forest of a ROI classification run (fitted on its training patients)
    and the bundle's ``fusion`` record.

    Raises:
        BundleError: weight outside [0, 1], trees < 1, or a run the forest cannot be fitted on.
    """
    from braintumor.data.region_features import FEATURES
    from braintumor.errors import BrainTumorError
    from braintumor.training.region_forest import fit_region_forest, fold_regions

    if not 0.0 <= weight <= 1.0:
        raise BundleError(f"--fuse-weight {weight}; expected the CNN's share in [0, 1]")
    if trees < 1:
        raise BundleError(f"--forest-trees {trees}; expected at least 1 tree")
    run = cls_weights.parent.parent
    try:
        regions = fold_regions(run, with_test=False)
    except (BrainTumorError, OSError) as exc:
        raise BundleError(f"--fuse-forest: cannot fit the forest on {run} ({exc})") from None
    if regions.classes != classes:
        raise BundleError(f"{run}: classes {regions.classes} differ from its weights' classes {classes}")
    fitted = fit_region_forest(regions.x_train, regions.y_train, trees, seed)
    forest = RegionForest.from_sklearn(fitted, list(FEATURES), classes)
    fusion = {"weight_cnn": float(weight), "features": list(FEATURES), "trees": trees, "seed": seed,
              "fitted_on": f"{len(regions.x_train)} slices of {run}"}  # fmt: skip
    return forest, fusion


def _write_forest(forest: RegionForest, folder: Path) -> None:
    data, meta = forest.to_files()
    (folder / FOREST_WEIGHTS).write_bytes(data)
    (folder / FOREST_META).write_text(json_text(meta, indent=2) + "\n")


def run_analysis(weights: Path) -> dict[str, Any]:
    """The bundle's ``analysis`` defaults: how the run of ``weights`` (the segmenter; the
    classifier of a classify-only bundle) was scored (its ``eval`` settings: threshold,
    post-processing and its scope, flip TTA), so that analysing with the bundle reproduces the
    run's evaluation."""
    from braintumor.config import EvalConfig, load_config

    config = RunDir.of_weights(weights.resolve()).config
    ev = load_config(config).eval if config.is_file() else EvalConfig()
    return {
        **DEFAULT_ANALYSIS,
        "threshold": ev.threshold,
        "largest_component": ev.largest_component,
        "fill_holes": ev.fill_holes,
        "component_fraction": ev.component_fraction,
        "postprocess_scope": ev.postprocess_scope,
        "tta_flips": list(tta_views(ev.tta)),
    }


@dataclass
class Assembled:
    """What a bundle is made of, before it is written: its ``bundle.json``, each role's weights
    file and model card, and the fitted forest of a fused bundle."""

    info: dict[str, Any]
    weights: dict[str, Path]
    cards: dict[str, ModelCard]
    forest: RegionForest | None


def _classifier_runs(cls: Classifiers) -> dict[str, RunPath]:
    """Role -> run of the classifier(s): one run is ``cls``; several an ensemble ``cls``, ``cls2``..."""
    runs: list[RunPath] = [cls] if isinstance(cls, str | Path) else list(cls or [])
    return {classifier_role(i): run for i, run in enumerate(runs)}


def assemble(
    seg: str | Path | None,
    cls: Classifiers = None,
    gate: str | Path | None = None,
    name: str = "",
    version: str = "1",
    fp16: bool = False,
    command: str | None = None,
    data: str = "",
    fuse_forest: bool = False,
    fuse_weight: float = 0.5,
    forest_trees: int = 300,
    mask_confidence_floor: float | None = MASK_CONFIDENCE_FLOOR,
) -> Assembled:
    """Check the runs and compose the bundle's record (see :func:`create_bundle` for the arguments)."""
    classifiers = _classifier_runs(cls)
    given = {"seg": seg, **classifiers, "gate": gate}
    runs = {role: path for role, path in given.items() if path is not None}
    sources = {role: resolve_run(path) for role, path in runs.items()}
    cards = {
        role: read_card(_read_json(w.with_suffix(".json")), str(w.with_suffix(".json")))
        for role, (w, _) in sources.items()
    }
    cls_card = cards.get("cls")
    where = {r: str(p) for r, p in runs.items()}
    check_compatible(cards.get("seg"), cls_card, cards.get("gate"), where)
    if len(classifiers) > 1 and seg is None:
        raise BundleError(
            "several --cls make an ensemble of ROI classifiers, which crop the segmenter's tumours, "
            "and this bundle has no --seg; pass --seg RUN or one --cls"
        )
    check_members([cards[r] for r in classifiers], [where[r] for r in classifiers])
    if seg is None and fuse_forest:
        raise BundleError(
            "--fuse-forest fits a forest on the features of the tumour the segmenter outlines, and "
            "this bundle has no --seg; pass --seg RUN or leave out --fuse-forest"
        )
    forest, fusion = None, None
    if fuse_forest:
        if cls_card is None:
            raise BundleError(
                "--fuse-forest fuses a forest with the ROI classifier, and this bundle has none; "
                "pass --cls RUN or leave out --fuse-forest"
            )
        forest, fusion = fit_fusion(sources["cls"][0], list(cls_card.classes), fuse_weight, forest_trees)
    if seg is None:
        version_written = CLASSIFY_ONLY_FORMAT_VERSION
    else:
        version_written = FULL_FORMAT_VERSION if cls_card else SEGMENT_ONLY_FORMAT_VERSION
    if fusion:
        version_written = FUSION_FORMAT_VERSION
    if len(classifiers) > 1:
        version_written = ENSEMBLE_FORMAT_VERSION
    info = {
        "format": BUNDLE_FORMAT,
        "format_version": version_written,
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_version": __version__,
        "expansion": cls_card.preprocessing.roi_expansion if cls_card else None,
        "classes": list(cls_card.classes) if cls_card else [],
        "dtype": "float16" if fp16 else "float32",
        "models": {r: _model_entry(cards[r], *sources[r], Path(runs[r])) for r in cards},
        "training_command": command,
        "data": data,
        "analysis": run_analysis(sources["seg" if seg is not None else "cls"][0])
        | ({"mask_confidence_floor": mask_confidence_floor} if seg is not None and cls_card else {}),
        **({"fusion": fusion} if fusion else {}),
    }
    return Assembled(info, {r: w for r, (w, _) in sources.items()}, cards, forest)


def from_run(
    seg: str | Path | None, cls: Classifiers = None, gate: str | Path | None = None, **options: Any
) -> Bundle:
    """The bundle :func:`create_bundle` would write from these runs (float32), built in memory:
    scoring a run through it is scoring what ships."""
    from safetensors.torch import load_file

    main = Path(seg if seg is not None else next(iter(_classifier_runs(cls).values()), ""))
    parts = assemble(seg, cls, gate, name=options.pop("name", "") or main.name, **options)
    bundle = Bundle(main, parts.info, forest=parts.forest)
    for role, weights in parts.weights.items():
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
        net = build_from_card(parts.cards[role], state, str(weights))
        bundle.models[role] = BundleModel(role, parts.cards[role], net, str(weights))
    return bundle


def create_bundle(
    seg: str | Path | None,
    cls: Classifiers,
    out: str | Path,
    gate: str | Path | None = None,
    name: str | None = None,
    version: str = "1",
    fp16: bool = False,
    zip_output: bool = False,
    command: str | None = None,
    data: str = "",
    overwrite: bool = False,
    fuse_forest: bool = False,
    fuse_weight: float = 0.5,
    forest_trees: int = 300,
    mask_confidence_floor: float | None = MASK_CONFIDENCE_FLOOR,
) -> Path:
    """Bundle the best weights of a segmentation run, optionally a ROI classification run and
    optionally a whole-slice gate run; or of a whole-slice classification run alone.

    Args:
        seg, cls, gate: run folders (or their ``best.safetensors``); ``cls=None`` makes a
            segmentation-only bundle (tumour slices are labelled ``tumour``), with or without a gate;
            ``seg=None`` with a whole-slice ``cls`` (no ``data.roi_expansion``) and no gate makes a
            classify-only bundle (each slice labelled by the classifier, no mask). Several ROI
            ``cls`` runs beside a segmenter make an ensemble whose probabilities analysis
            averages; the first is the primary (its expansion, Grad-CAM and forest).
        out: bundle folder to write (``out.zip`` with ``zip_output``; a ``.zip`` suffix implies it).
        name, version: recorded in ``bundle.json`` (name defaults to the folder name).
        fp16: store weights as float16 (half the size; loading casts back to float32).
        command, data: the training command and a free-text description of the training data.
        overwrite: replace an existing ``out``.
        fuse_forest: fit a random forest on region features of ``cls``'s training patients and fuse
            it with the classifier at analysis (needs ``cls``); ``fuse_weight`` is the
            classifier's share of the averaged probabilities, ``forest_trees`` the forest's size.
        mask_confidence_floor: with a segmenter and a classifier, the analysis default of the
            same name (:class:`~braintumor.inference.pipeline.AnalysisSettings`): the ensemble's
            crop classifiers weighed by the segmenter's confidence in its mask; None averages
            the members alike.

    The ``analysis`` defaults are the segmentation run's evaluation settings, or the classifier
    run's in a classify-only bundle (:func:`run_analysis`).

    Returns:
        The written folder or zip.

    Raises:
        BundleError: missing runs, no model at all, weights that do not fit, or models that cannot
            work together (a ROI classifier, a gate or ``fuse_forest`` without a segmenter...).
    """
    out = Path(out)
    zip_output = zip_output or out.suffix == ".zip"
    # "t1ce-v1.5" keeps its ".5": only a ".zip" suffix is replaced
    stem_name = out.name[: -len(".zip")] if out.suffix == ".zip" else out.name
    target = out.with_name(f"{stem_name}.zip") if zip_output else out
    if target.exists() and not overwrite:
        raise BundleError(f"{target}: already exists; choose another --out or pass --overwrite")
    parts = assemble(
        seg,
        cls,
        gate,
        name or stem_name,
        version,
        fp16,
        command,
        data,
        fuse_forest,
        fuse_weight,
        forest_trees,
        mask_confidence_floor,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for role, weights in parts.weights.items():
            _copy_weights(weights, parts.cards[role], tmp / role, fp16)
        if parts.forest is not None:
            _write_forest(parts.forest, tmp)
        atomic_write_json(tmp / "bundle.json", parts.info)
        write_manifest(tmp)
        _publish(tmp, target, zip_output)
    finally:
        if tmp.exists():  # the zip case, or a failure
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _publish(folder: Path, target: Path, zip_output: bool) -> None:
    """Move the finished folder onto ``target``, or zip it there."""
    if zip_output:

        def write(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.iterdir()):
                    archive.write(file, file.name)

        atomic_write(target, write)
        return
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)  # mkdtemp made it private; bundles are meant to be shared
    if not target.exists():
        folder.rename(target)
        return
    old = target.with_name(f".{target.name}.replaced")  # the old bundle stays until the new one is in
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    try:
        folder.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old) if old.is_dir() else old.unlink()
