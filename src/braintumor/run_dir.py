"""The layout of a run folder: every file name in one place.

A run folder is what ``train``, ``cv``, ``sweep-roi``, ``evaluate``, ``fuse`` and ``pipeline`` write
(``--out RUN_DIR``); ``report``, ``compare``, ``bundle create`` and the study runner read it.

Single-fold run (``train``; a fold of a CV run)::

    config.yaml            resolved ExperimentConfig (channels and fold as used)
    splits.json            seeded patient splits, written once and reused (shared by a CV run's folds)
    excluded_copies.json   images dropped as copies of ``data.exclude_copies_of`` (when set; of its
                           fold ``data.exclude_copies_fold`` only, when that is set)
    phantoms/              seeded phantom data of a run without ``data.path`` (a fold uses its CV folder's)
    history.csv            one row per epoch (and resumed session): losses, metrics, lr, seconds
    checkpoints/           best.safetensors + best.json (weights and their card), best.ckpt and
                           last.ckpt (Lightning states; last.ckpt resumes the run)
    metrics.json           test-fold metrics (plus train_seconds, epochs)
    per_slice.csv          segmentation: one row per test slice
    per_patient.csv        segmentation: one row per test patient
    predictions.csv        classification: probabilities per test image
    near_duplicates.csv    classification on a predefined split: test images with a copy in training
    tuning.csv             ``evaluate --tune``: settings scored on the validation patients
    excluded_copies.csv    external evaluation: images left out as copies of the training data
    eval/                  ``evaluate --data OTHER``: the same result files for external data
    shipped/               ``evaluate --as-shipped``: metrics.json, per_slice.csv, per_patient.csv of
                           the bundle made from the run, run as ``analyze`` runs it
    curves.png  overlays.png  dice_per_patient.png  confusion.png  confusion_fused.png  roc.png
    misclassified.png      figures (``gradcam_<image>.png``: Grad-CAM maps the demo adds)
    report.html  report.md ``braintumor report``

Cross-validation run (``cv``; also ``fuse`` and ``pipeline`` output)::

    config.yaml  splits.json
    cv_metrics.json        mean, std and per-fold metrics
    cv_folds.csv           one row per fold
    fold<k>/               a single-fold run per fold
    all/                   the same configuration trained on every patient (``train --set
                           data.split=all``): its bundle shows these folds' figures

ROI sweep (``sweep-roi``)::

    config.yaml  splits.json  phantoms/
    sweep.json  sweep.csv  sweep.png   rows per factor, the chosen factor, accuracy against the factor
    roi-<factor>/          a cross-validation run per factor
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class RunDir:
    """A run folder; its properties are the paths of the files it holds (existing or not).

    Example:
        >>> run = RunDir(Path("runs/lgg"))
        >>> run.fold(2).best_weights.as_posix()
        'runs/lgg/fold2/checkpoints/best.safetensors'
    """

    path: Path

    CONFIG: ClassVar[str] = "config.yaml"
    SPLITS: ClassVar[str] = "splits.json"
    EXCLUDED_COPIES: ClassVar[str] = "excluded_copies.json"
    PHANTOMS: ClassVar[str] = "phantoms"
    HISTORY: ClassVar[str] = "history.csv"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    BEST: ClassVar[str] = "best"  # checkpoint stem: best.safetensors, best.json, best.ckpt
    LAST: ClassVar[str] = "last"  # checkpoint stem: last.ckpt
    BEST_WEIGHTS: ClassVar[str] = "best.safetensors"
    BEST_META: ClassVar[str] = "best.json"
    BEST_CHECKPOINT: ClassVar[str] = "best.ckpt"
    LAST_CHECKPOINT: ClassVar[str] = "last.ckpt"
    METRICS: ClassVar[str] = "metrics.json"
    SHIPPED: ClassVar[str] = "shipped"
    PER_SLICE: ClassVar[str] = "per_slice.csv"
    PER_PATIENT: ClassVar[str] = "per_patient.csv"
    PREDICTIONS: ClassVar[str] = "predictions.csv"
    NEAR_DUPLICATES: ClassVar[str] = "near_duplicates.csv"
    TUNING: ClassVar[str] = "tuning.csv"
    EXCLUDED_COPIES_TABLE: ClassVar[str] = "excluded_copies.csv"
    EXTERNAL_EVAL: ClassVar[str] = "eval"
    CURVES: ClassVar[str] = "curves.png"
    OVERLAYS: ClassVar[str] = "overlays.png"
    DICE_PER_PATIENT: ClassVar[str] = "dice_per_patient.png"
    CONFUSION: ClassVar[str] = "confusion.png"
    CONFUSION_FUSED: ClassVar[str] = "confusion_fused.png"
    ROC: ClassVar[str] = "roc.png"
    MISCLASSIFIED: ClassVar[str] = "misclassified.png"
    GRADCAM: ClassVar[str] = "gradcam"  # gradcam_<image>.png (the demo adds them)
    REPORT_HTML: ClassVar[str] = "report.html"
    REPORT_MD: ClassVar[str] = "report.md"
    CV_METRICS: ClassVar[str] = "cv_metrics.json"
    CV_FOLDS: ClassVar[str] = "cv_folds.csv"
    FOLD: ClassVar[str] = "fold"  # fold<k>/
    ALL: ClassVar[str] = "all"  # all/: the configuration trained on every patient (data.split=all)
    SWEEP: ClassVar[str] = "sweep.json"
    SWEEP_TABLE: ClassVar[str] = "sweep.csv"
    SWEEP_FIGURE: ClassVar[str] = "sweep.png"
    ROI_ARM: ClassVar[str] = "roi-"  # roi-<factor>/

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def of_weights(cls, weights: str | Path) -> RunDir:
        """The run folder holding ``weights`` (``<run>/checkpoints/best.safetensors``)."""
        return cls(Path(weights).parent.parent)

    # single-fold run
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def splits(self) -> Path:
        return self.path / self.SPLITS

    @property
    def excluded_copies(self) -> Path:
        return self.path / self.EXCLUDED_COPIES

    @property
    def phantoms(self) -> Path:
        """The seeded phantom data: a fold folder's is its CV folder's, shared by every fold."""
        return (self.path.parent if self.path.name.startswith(self.FOLD) else self.path) / self.PHANTOMS

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def best_stem(self) -> Path:
        """``checkpoints/best``: the stem ``save_weights`` completes with ``.safetensors``/``.json``."""
        return self.checkpoints / self.BEST

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / self.BEST_WEIGHTS

    @property
    def best_meta(self) -> Path:
        return self.checkpoints / self.BEST_META

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / self.BEST_CHECKPOINT

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / self.LAST_CHECKPOINT

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def per_slice(self) -> Path:
        return self.path / self.PER_SLICE

    @property
    def per_patient(self) -> Path:
        return self.path / self.PER_PATIENT

    @property
    def predictions(self) -> Path:
        return self.path / self.PREDICTIONS

    @property
    def near_duplicates(self) -> Path:
        return self.path / self.NEAR_DUPLICATES

    @property
    def tuning(self) -> Path:
        return self.path / self.TUNING

    @property
    def excluded_copies_table(self) -> Path:
        return self.path / self.EXCLUDED_COPIES_TABLE

    @property
    def external_eval(self) -> RunDir:
        """Where ``evaluate --data OTHER`` writes by default."""
        return RunDir(self.path / self.EXTERNAL_EVAL)

    @property
    def shipped(self) -> RunDir:
        """Where ``evaluate --as-shipped`` writes (the run scored through its bundle)."""
        return RunDir(self.path / self.SHIPPED)

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def overlays(self) -> Path:
        return self.path / self.OVERLAYS

    @property
    def dice_per_patient(self) -> Path:
        return self.path / self.DICE_PER_PATIENT

    @property
    def confusion(self) -> Path:
        return self.path / self.CONFUSION

    @property
    def confusion_fused(self) -> Path:
        return self.path / self.CONFUSION_FUSED

    @property
    def roc(self) -> Path:
        return self.path / self.ROC

    @property
    def misclassified(self) -> Path:
        return self.path / self.MISCLASSIFIED

    def gradcam(self, image_name: str) -> Path:
        return self.path / f"{self.GRADCAM}_{image_name}"

    def gradcams(self) -> list[Path]:
        """The Grad-CAM figures present (``gradcam*.png``), sorted by name."""
        return sorted(self.path.glob(f"{self.GRADCAM}*.png"))

    @property
    def report_html(self) -> Path:
        return self.path / self.REPORT_HTML

    @property
    def report_md(self) -> Path:
        return self.path / self.REPORT_MD

    # cross-validation run
    @property
    def cv_metrics(self) -> Path:
        return self.path / self.CV_METRICS

    @property
    def cv_folds(self) -> Path:
        return self.path / self.CV_FOLDS

    def fold(self, k: int) -> RunDir:
        """``fold<k>/``, the single-fold run of fold ``k``."""
        return RunDir(self.path / f"{self.FOLD}{k}")

    @property
    def all(self) -> RunDir:
        """``all/``, the configuration trained on every patient after the folds (``cv --then-all``)."""
        return RunDir(self.path / self.ALL)

    def cv_parent(self) -> RunDir | None:
        """The cross-validation folder this run belongs to (``<cv>/fold<k>/`` or ``<cv>/all/`` with
        the folds' ``cv_metrics.json`` beside it), or None."""
        name, parent = self.path.name, RunDir(self.path.parent)
        is_fold = name.startswith(self.FOLD) and name[len(self.FOLD) :].isdigit()
        return parent if (is_fold or name == self.ALL) and parent.cv_metrics.is_file() else None

    def folds(self) -> dict[int, RunDir]:
        """Fold number -> fold folder for each ``fold<k>/`` present, in fold order."""
        found = {
            int(p.name[len(self.FOLD) :]): RunDir(p)
            for p in self.path.glob(f"{self.FOLD}*")
            if p.name[len(self.FOLD) :].isdigit()
        }
        return dict(sorted(found.items()))

    # ROI sweep
    @property
    def sweep(self) -> Path:
        return self.path / self.SWEEP

    @property
    def sweep_table(self) -> Path:
        return self.path / self.SWEEP_TABLE

    @property
    def sweep_figure(self) -> Path:
        return self.path / self.SWEEP_FIGURE

    def roi_arm(self, label: str) -> RunDir:
        """``roi-<label>/``, the cross-validation run of one expansion factor."""
        return RunDir(self.path / f"{self.ROI_ARM}{label}")

    def roi_arms(self) -> list[RunDir]:
        """The ``roi-<factor>/`` folders present, sorted by name."""
        return [RunDir(p) for p in sorted(self.path.glob(f"{self.ROI_ARM}*"))]
