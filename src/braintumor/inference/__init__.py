"""Inference: analyse scans with a model bundle (segment -> crop -> classify -> explain).

Modules (one job each):
    bundle_store   verified reading of a bundle folder/zip against its sha256 manifest
    bundle_checks  metadata validation; which models can work together
    bundle         load a bundle (safetensors only), describe one, default packaged bundle lookup
    forest         region-feature random forest as safetensors + JSON; numpy predictor
    export         ONNX export into a bundle
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

Bundles are created from training runs by :mod:`braintumor.bundle`; this package never imports
``braintumor.training``. Heavy modules load lazily: ``from braintumor.inference import Analyzer``
imports only what it needs.
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
    "Bundle": "braintumor.inference.bundle",
    "load_bundle": "braintumor.inference.bundle",
    "default_bundle_path": "braintumor.inference.bundle",
    "resolve_bundle_path": "braintumor.inference.bundle",
    "BundleError": "braintumor.inference.bundle_store",
    "bundle_info": "braintumor.inference.bundle",
    "export_onnx": "braintumor.inference.export",
    "Predictor": "braintumor.inference.predict",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'braintumor.inference' has no attribute {name!r}")
