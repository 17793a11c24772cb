"""The Typer app every verb module registers on, and the helpers they share (output, errors, progress).

Imports nothing else of ``braintumor.cli``, so verb modules import it and never each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from braintumor.errors import BrainTumorError
from braintumor.io_utils import json_text

app = typer.Typer(
    help="Classify and segment brain tumours in MRI.\n\nExample: braintumor data inspect DATA_DIR",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


def emit_json(obj: Any) -> None:
    """The one JSON object a ``--json`` command prints (strict JSON: ``null`` for NaN)."""
    sys.stdout.write(json_text(obj) + "\n")


@contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields an update(done, total) callback.

    Off when stderr is no terminal (a log, a pipe): there it would only leave blank lines."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=quiet or not err.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def fail(exc: Exception) -> None:
    """Print a one-line error and exit 1 (no traceback for expected errors)."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # greppable
    raise typer.Exit(1)


def run_guarded(fn: Callable[[], None]) -> None:
    try:
        fn()
    except BrainTumorError as exc:
        fail(exc)
