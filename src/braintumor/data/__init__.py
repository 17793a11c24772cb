"""Data layer: one loader per source format, all producing a SampleIndex.

Names load lazily so that importing one loader does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ArrayStore": "braintumor.data.cache",
    "Preprocessing": "braintumor.data.cache",
    "build_cache": "braintumor.data.cache",
    "CachedDataset": "braintumor.data.dataset",
    "Sample": "braintumor.data.index",
    "SampleIndex": "braintumor.data.index",
    "InspectReport": "braintumor.data.inspect",
    "inspect_dataset": "braintumor.data.inspect",
    "FORMATS": "braintumor.data.loaders",
    "detect_format": "braintumor.data.loaders",
    "load_dataset": "braintumor.data.loaders",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'braintumor.data' has no attribute {name!r}")
