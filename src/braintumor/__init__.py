"""braintumor: classify and segment brain tumours in MRI.

Subpackages: ``data`` (loaders, SampleIndex, splits, cache), ``models`` (registered networks),
``evaluation`` (metrics), ``training`` (Lightning engine), ``reports`` (plots).
Heavy modules load lazily, so ``import braintumor`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "SampleIndex": "braintumor.data.index",
    "load_dataset": "braintumor.data.loaders",
    "inspect_dataset": "braintumor.data.inspect",
    "build_cache": "braintumor.data.cache",
    "Preprocessing": "braintumor.data.cache",
    "load_config": "braintumor.config",
    "ExperimentConfig": "braintumor.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'braintumor' has no attribute {name!r}")
