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
