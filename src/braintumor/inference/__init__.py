"""Inference: analyse scans with a model bundle (segment -> crop -> classify -> explain, or, with a
classify-only bundle, classify whole slices -> explain).

Modules (one job each):
    backends       torch (bf16 + channels_last where native) and ONNX Runtime
    sources        inputs: files, folders, NIfTI, DICOM series -> Scan (readers in data/volumes.py)
    prepare        each model's preprocessing, read from the bundle
    pipeline       one batch of slices through the networks
    gradcam        Grad-CAM target layers and heat maps
    results        typed results and the per-volume summary
    overlay        full-resolution RGB outlines of a mask on a slice (no matplotlib)
    outputs        overlays, masks, NIfTI masks, JSON and CSV
    out_folder     the output folder: never over an input, earlier results, the outputs marker
    analyzer       ``Analyzer``: the public entry point, batching + prefetching
    predict/batch  single-model prediction used by ``braintumor predict``

Bundles are created, verified, loaded and exported by :mod:`braintumor.bundle`; this package
never imports ``braintumor.training``. Heavy modules load lazily: ``from braintumor.inference
import Analyzer`` imports only what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Analyzer": "braintumor.inference.analyzer",
    "AnalysisResult": "braintumor.inference.results",
    "SliceResult": "braintumor.inference.results",
    "Uncertainty": "braintumor.inference.results",
    "AnalysisSettings": "braintumor.inference.pipeline",
    "Bundle": "braintumor.bundle.load",
    "load_bundle": "braintumor.bundle.load",
    "default_bundle_path": "braintumor.bundle.load",
    "resolve_bundle_path": "braintumor.bundle.load",
    "BundleError": "braintumor.bundle.store",
    "bundle_info": "braintumor.bundle.load",
    "export_onnx": "braintumor.bundle.export",
    "Predictor": "braintumor.inference.predict",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'braintumor.inference' has no attribute {name!r}")
