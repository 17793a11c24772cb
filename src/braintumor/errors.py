"""Exceptions with messages that name the file and say how to fix the problem."""

from __future__ import annotations

from pathlib import Path


class BrainTumorError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(BrainTumorError):
    """A data file or folder is missing, unreadable or inconsistent.

    Args:
        path: the file or folder at fault.
        problem: what is wrong, what was expected, and how to fix it.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(BrainTumorError):
    """A configuration value is missing or invalid."""


class OutputError(DataError):
    """An output path cannot be written (an existing file, no permission, a virtual filesystem)."""


class MissingExtraError(BrainTumorError):
    """An optional dependency is not installed (see :func:`braintumor.extras.require`).

    Args:
        package: the pip package that is missing (``onnxruntime``, ``python-multipart``).
        extra: the ``braintumor[<extra>]`` that installs it.
        purpose: what needed it (``the ONNX backend``, ``reading DICOM files``).
        missing: the module that failed to import, when it is not ``package`` itself (a broken or
            partial install: ``starlette`` for ``fastapi``).
    """

    def __init__(self, package: str, extra: str, purpose: str, missing: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        state = "is not installed" if missing is None else f"cannot import '{missing}'"
        super().__init__(
            f"{purpose} needs the package '{package}', which {state}; "
            f"install it with: pip install 'braintumor[{extra}]'"
        )
