"""Evaluate trained weights on a fold's held-out patients: metrics, tables and figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from braintumor.config import EvalConfig, ExperimentConfig, to_dict
from braintumor.data.dataset import CachedDataset, positions_for_patients, positions_for_samples
from braintumor.data.index import SampleIndex
from braintumor.data.splits import SplitLeakageError, Splits
from braintumor.errors import ConfigError
from braintumor.evaluation import (
    ClassificationAccumulator,
    SegmentationAccumulator,
    consensus_report,
    label_map,
)
from braintumor.io_utils import atomic_write, atomic_write_json, prepare_out_dir
from braintumor.models.card import ModelCard
from braintumor.run_dir import RunDir
from braintumor.runtime.forward import logit_of
from braintumor.runtime.precision import scoring_precision
from braintumor.training.data import FoldData
from braintumor.training.ensemble import load_ensemble
from braintumor.training.predictions import is_volumetric, postprocessed, predict, predict_slices


def _save_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def evaluate_fold(
    weights: Path | Sequence[Path],
    fold: FoldData,
    run_dir: Path,
    precision: str = "auto",
    options: EvalConfig | None = None,
) -> dict[str, Any]:
    """Score ``weights`` (several files: their mean probability) on ``fold.test``; writes tables
    and PNGs into ``run_dir``."""
    net, card = load_ensemble([weights] if isinstance(weights, Path) else list(weights))
    options = options or EvalConfig()
    if card.task == "segment":
        metrics = _evaluate_segmentation(net, fold, run_dir, precision, options)
    else:
        metrics = _evaluate_classification(net, card, fold, run_dir, precision, options)
    metrics["evaluation"] = to_dict(options)
    return metrics


def _evaluate_segmentation(
    net: nn.Module, fold: FoldData, run_dir: Path, precision: str, options: EvalConfig
) -> dict[str, Any]:
    slices = dict(zip(fold.index.frame["sample_id"], fold.index.frame["slice"], strict=True))
    volumetric = is_volumetric(fold.index)
    if options.postprocess_scope == "patient" and options.largest_component and not volumetric:
        raise ConfigError(
            f"{fold.index.frame['dataset'].iloc[0]}: eval.postprocess_scope=patient keeps each patient's "
            "largest 3D component, but these images have no slice positions (separate 2D images, "
            "not a volume); use postprocess_scope=slice"
        )
    cut = logit_of(options.threshold)
    p = predict_slices(
        net, fold.test, slices, options, precision, lambda x: (x > cut).to(torch.uint8).numpy()
    )
    truths, patients, samples, keys = p.truths, p.patients, p.samples, p.keys
    preds = postprocessed(p.outputs, patients, keys, options)
    # a patient's HD95 is volumetric for a volume, else the mean over its separate images
    acc = SegmentationAccumulator(store_masks=volumetric)
    step = max(options.batch_size, 1)
    for i in range(0, len(preds), step):
        part = slice(i, i + step)
        acc.add(np.stack(preds[part]), np.stack(truths[part]), patients[part], samples[part], keys[part])
    per_slice, per_patient = acc.per_slice(), acc.per_patient()
    _save_csv(per_slice, RunDir(run_dir).per_slice)
    _save_csv(per_patient, RunDir(run_dir).per_patient)
    summary = {k: _plain(v) for k, v in acc.summary().items()}
    summary["per_patient"] = per_patient.to_dict("records")
    from braintumor.training.figures import segmentation_figures

    segmentation_figures(fold, per_slice, per_patient, dict(zip(samples, preds, strict=True)), run_dir)
    return {"task": "segment", "fold": fold.fold, **summary}


def consensus_metrics(predictions: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """``accuracy_patient_vote`` (every slice takes its patient's mean probabilities), its report and
    ``accuracy_per_patient`` from a ``predictions.csv`` table; empty without patients of several
    slices (:func:`~braintumor.evaluation.classification.consensus_report`)."""
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
    report = consensus_report(
        predictions["target"].to_numpy(), probs, list(predictions["patient_id"]), classes
    )
    if report is None:
        return {}
    return {"accuracy_patient_vote": report["accuracy"],
            "accuracy_per_patient": report["accuracy_per_patient"], "patient_vote": report}  # fmt: skip


def _evaluate_classification(
    net: nn.Module, card: ModelCard, fold: FoldData, run_dir: Path, precision: str, options: EvalConfig
) -> dict[str, Any]:
    acc = ClassificationAccumulator(list(card.classes), inputs="logits")  # TTA yields log-probabilities
    data_name = fold.index.frame["dataset"].iloc[0] if len(fold.index.frame) else run_dir
    to_model = label_map(list(fold.index.classes), list(list(card.classes)), data_name)
    batches = predict(
        net, fold.test, options.batch_size, precision, options.tta, "classify", fold.coord_channels
    )
    patients: list[str] = []
    for batch, logits in batches:
        acc.add(logits, to_model[batch["label"]], batch["sample_id"])
        patients += [str(p) for p in batch["patient_id"]]
    report = acc.report()
    predictions = acc.per_sample()
    predictions.insert(1, "patient_id", patients)
    _save_csv(predictions, RunDir(run_dir).predictions)
    from braintumor.training.figures import classification_figures

    classification_figures(report, predictions, list(card.classes), run_dir, fold)
    metrics: dict[str, Any] = {"task": "classify", "fold": fold.fold, **report}
    metrics.update(consensus_metrics(predictions, list(card.classes)))
    test_ids = set(fold.splits.folds[fold.fold]["test"]) if fold.splits.folds else set()
    if fold.splits.method == "predefined" and set(predictions["sample_id"]) <= test_ids:
        # A predefined Training/Testing split (Kaggle) may hold near-copies across the split; score
        # the test images without a copy in training separately (data/dedup.py).
        from braintumor.data.dedup import find_duplicates

        dups = find_duplicates(fold.index)
        pairs = pd.DataFrame(
            dups.pairs, columns=["test", "train", "score", "kind", "test_label", "train_label"]
        )
        _save_csv(pairs, RunDir(run_dir).near_duplicates)
        has_dup = predictions["sample_id"].isin(set(dups.duplicate_test_ids))
        clean = predictions[~has_dup]
        metrics["near_duplicates"] = {
            "n_test_with_duplicate": int(has_dup.sum()), "n_test": len(predictions),
            "threshold": dups.threshold, "n_cross_class": dups.n_cross_class,
        }  # fmt: skip
        metrics["accuracy_without_duplicates"] = float(clean["correct"].mean()) if len(clean) else None
        metrics["n_without_duplicates"] = len(clean)
    return metrics


def _check_overrides_keep_model_inputs(cfg: ExperimentConfig, saved: ExperimentConfig, run_dir: Path) -> None:
    """Refuse overrides that would score other patients than the run's held-out fold, or feed the
    weights inputs prepared differently from those they were trained on."""
    from braintumor.training.data import preprocessing_of

    if cfg.data.fold != saved.data.fold:
        raise ConfigError(
            f"{run_dir}: data.fold={cfg.data.fold} but the run trained on fold {saved.data.fold}; "
            "its held-out patients are those of its own fold (evaluate that fold's run instead)"
        )
    asked, trained = preprocessing_of(cfg.data).to_dict(), preprocessing_of(saved.data).to_dict()
    changed = {k: v for k, v in asked.items() if trained[k] != v}
    if changed:
        raise ConfigError(
            f"{run_dir}: the weights were trained on {trained}; overriding {changed} would feed "
            "them differently prepared images"
        )


def _without_copies_of_training(
    index: SampleIndex, column: str, scored: set[str], training_data: str, part: dict[str, list[str]]
) -> tuple[set[str], list[dict[str, Any]]]:
    """``scored`` less the groups holding a copy of an image that trained the run or chose its
    checkpoint (e.g. figshare slices inside Kaggle), and the copies found (``data/dedup.py``)."""
    from braintumor.data.dedup import drop_copies
    from braintumor.data.loaders import load_dataset
    from braintumor.data.splits import group_column

    trained = load_dataset(training_data)
    seen = trained.subset(
        trained.frame[group_column(trained)].astype(str).isin(set(part["train"]) | set(part["val"]))
    )
    candidates = index.subset(index.frame[column].astype(str).isin(scored))
    copies = drop_copies(candidates, seen)[1]["dropped"]
    group_of = dict(zip(candidates.frame["sample_id"], candidates.frame[column].astype(str), strict=True))
    return scored - {group_of[c["sample_id"]] for c in copies}, copies


def _plain(v: Any) -> Any:
    return float(v) if isinstance(v, np.floating | float) else int(v) if isinstance(v, np.integer) else v


@dataclass
class HeldOut:
    """What an evaluation scores: the fold's test patients on the run's own data, or on other data
    every patient (or image) the run never trained on nor chose its checkpoint with, less the
    copies of its training images (``copies``: the dropped ones)."""

    splits: Splits
    fold: int
    part: dict[str, list[str]]
    column: str
    scored: set[str]
    copies: list[dict[str, Any]]
    own_data: bool


def held_out_groups(run_dir: Path, cfg: ExperimentConfig, trained_on: Any, index: SampleIndex) -> HeldOut:
    """The groups :func:`evaluate_run` scores (see :class:`HeldOut`); ``trained_on`` is the run's
    own data config.

    Raises:
        SplitLeakageError: every group of ``index`` trained the run or chose its checkpoint.
    """
    splits = Splits.load(RunDir(run_dir).splits)
    column = "patient_id" if splits.unit == "patient" else "sample_id"
    groups = set(index.frame[column].astype(str))
    own_data = groups == set(splits.groups())
    k = splits.check_fold(cfg.data.fold)
    part = splits.folds[k]
    scored = set(part["test"]) if own_data else groups - set(part["train"]) - set(part["val"])
    copies: list[dict[str, Any]] = []
    if not own_data and trained_on.path and Path(trained_on.path).exists():
        scored, copies = _without_copies_of_training(index, column, scored, trained_on.path, part)
    if not scored:
        raise SplitLeakageError(
            f"{cfg.data.path}: every {splits.unit} in it trained {run_dir} or chose its checkpoint; "
            "nothing is left to evaluate on"
        )
    return HeldOut(splits, k, part, column, scored, copies, own_data)


def evaluate_run(
    run_dir: str | Path,
    data_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    tune: bool = False,
    ensemble: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Evaluate a run's best weights, or their mean with the best weights of the ``ensemble`` runs.

    On the run's own data the held-out test patients of its fold are scored; on other data
    (``data_path`` whose patients the run's splits do not cover) every sample is an external test,
    except the patients that trained the run or chose its checkpoint (counted as ``excluded_seen``).
    Overrides may change evaluation settings, not the fold or the preprocessing the weights expect.
    Results go to ``out_dir`` (default: ``run_dir/eval`` for external data, else ``run_dir``).
    With ``tune`` (segmentation on the run's own data) TTA, threshold and post-processing are first
    chosen on the fold's validation patients (``tuning.csv``), then the test patients are scored.
    An ensemble member that trained or selected its model on one of those patients is refused.
    """
    from dataclasses import replace

    from braintumor.config import load_config
    from braintumor.training.data import load_store

    run_dir = Path(run_dir)
    cfg = load_config(RunDir(run_dir).config, overrides)
    trained_on = cfg.data
    _check_overrides_keep_model_inputs(cfg, load_config(RunDir(run_dir).config), run_dir)
    if data_path is not None:
        cfg = replace(cfg, data=cfg.data.for_other_data(data_path))
    index, store = load_store(cfg.data, run_dir)
    held_out = held_out_groups(run_dir, cfg, trained_on, index)
    splits, k, part, scored, copies, own_data = (
        held_out.splits,
        held_out.fold,
        held_out.part,
        held_out.scored,
        held_out.copies,
        held_out.own_data,
    )
    groups = set(index.frame[held_out.column].astype(str))
    with_mask = cfg.train.task == "segment"
    from braintumor.data.transforms import eval_transforms
    from braintumor.training.data import positions

    select = positions_for_patients if splits.unit == "patient" else positions_for_samples
    found = select(store, sorted(scored))
    context = cfg.data.context_slices
    test = CachedDataset(
        store, store.with_masks(found, "test") if with_mask else found, eval_transforms(with_mask), context
    )
    fold = FoldData(index, store, splits, k, test, test, test)
    members = [run_dir, *map(Path, ensemble)]
    weights = [RunDir(m).best_weights for m in members]
    if ensemble:
        from braintumor.training.ensemble import check_members_unseen

        check_members_unseen(members[1:], scored, set(part["val"]) if tune else set())
    target = prepare_out_dir(
        Path(out_dir) if out_dir else (run_dir if own_data else RunDir(run_dir).external_eval.path)
    )
    options, tuning = cfg.eval, None
    precision = scoring_precision(cfg.train.precision)
    if tune:
        if not own_data or cfg.train.task != "segment":
            raise ValueError(f"{run_dir}: --tune needs a segmentation run scored on its own data")
        from braintumor.training.tune_eval import tune_evaluation

        val = CachedDataset(
            store, positions(store, splits, k, "val", masked=True), eval_transforms(True), context
        )
        slices = dict(zip(index.frame["sample_id"], index.frame["slice"], strict=True))
        net, _ = load_ensemble(weights)
        options, table, tuning = tune_evaluation(net, val, slices, precision, cfg.eval, is_volumetric(index))
        _save_csv(table, RunDir(target).tuning)
    metrics = evaluate_fold(weights, fold, target, precision, options)
    if tuning is not None:
        metrics["tuning"] = tuning
    if ensemble:
        metrics["ensemble"] = [str(m) for m in members]
    metrics["external"] = not own_data
    if not own_data and len(scored) < len(groups):
        metrics["excluded_seen"] = len(groups) - len(scored)
    if copies:
        metrics["excluded_copies"] = len(copies)
        _save_csv(pd.DataFrame(copies), RunDir(target).excluded_copies_table)
    previous = RunDir(target).metrics
    if previous.is_file():  # keep what training recorded (time, epochs)
        import json

        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k in ("train_seconds", "epochs")}
        metrics.update(kept)
    atomic_write_json(RunDir(target).metrics, metrics)
    return metrics
