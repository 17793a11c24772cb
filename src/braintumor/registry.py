"""A small name -> factory registry used for models, losses and dataset formats."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

from braintumor.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """Raised when a name is not registered; the message lists the valid names.

    A ``ConfigError`` (the CLI prints it as one line) and, for callers that look names up like
    keys, a ``KeyError``.
    """

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps names to factories.

    Example:
        >>> MODELS: Registry[Callable[..., object]] = Registry("model")
        >>> @MODELS.register("tiny")
        ... def tiny(): ...
        >>> MODELS.names()
        ['tiny']
    """

    def __init__(self, kind: str, listing: str = "") -> None:
        """``kind`` names the entries in messages (``"model"``); ``listing`` says where the user
        can list them, e.g. ``"`braintumor models` lists them"``."""
        self.kind = kind
        self.listing = listing
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (names are unique)."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; unknown names list the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none registered)"
            listing = f" ({self.listing})" if self.listing else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}{listing}") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
