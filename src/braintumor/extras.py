"""Optional dependencies, imported where they are used (a training-only install lacks them).

The extras of ``pyproject.toml`` and what each installs:

    serve     fastapi, uvicorn, python-multipart   ``braintumor serve``
    onnx      onnx, onnxruntime                    ``--backend onnx``, ``braintumor export``
    openvino  openvino, onnx                       ``--backend openvino`` (``auto`` uses it when present)
    dicom     pydicom, highdicom                   reading DICOM files and series
    all       every extra above; ``dev`` includes it

Example:
    >>> ort = require("onnxruntime", "onnx", "the ONNX backend")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

from braintumor.errors import MissingExtraError

# Import name -> pip package name, where they differ.
PACKAGES = {"python_multipart": "python-multipart"}


def package_name(module: str) -> str:
    """The pip package of an import name: ``python_multipart.multipart`` -> ``python-multipart``."""
    top = module.split(".")[0]
    return PACKAGES.get(top, top)


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import and return ``module``, or say which extra installs it.

    Args:
        module: import name, dotted names allowed (``fastapi.responses``).
        extra: the ``braintumor[<extra>]`` that installs it (``serve``, ``onnx``, ``openvino``, ``dicom``).
        purpose: what needs it, as the start of a sentence (``the ONNX backend``).

    Raises:
        MissingExtraError: the module (or a package it needs) cannot be imported; the message names
            the package, ``purpose`` and ``pip install 'braintumor[<extra>]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = package_name(module)
        top = (exc.name or module).split(".")[0]
        missing = None if top == module.split(".")[0] else exc.name
        raise MissingExtraError(package, extra, purpose, missing) from exc


def available(module: str) -> bool:
    """Whether ``module`` imports here (imports it when it does)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
