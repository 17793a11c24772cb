"""CLI verbs about the package itself: ``demo``, ``models``, ``version``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from braintumor.cli.common import app, emit_json, out, run_guarded
from braintumor.cli.options import JsonFlag


@app.command("demo")
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/demo"),
    data: Annotated[
        Path | None, typer.Option("--data", help="A real dataset with masks instead of phantoms.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """The whole mission on phantoms: train -> evaluate -> bundle -> analyse -> report.

    Example: braintumor demo --out runs/demo
    """
    from braintumor.demo import run_demo
    from braintumor.io_utils import prepare_out_dir

    def go() -> None:
        prepare_out_dir(out_dir)
        run_demo(out_dir, json_out=json_out, console=out, data=data)

    run_guarded(go)


@app.command("models")
def models(
    pattern: Annotated[str, typer.Argument(help="Shell-style name pattern, e.g. 'resnet*'.")] = "*",
    task: Annotated[str | None, typer.Option(help="Only segment or classify models.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List the registered networks (the values model.name takes) with their tasks.

    Example: braintumor models --task classify
    """

    def go() -> None:
        from braintumor.config import TASKS, one_of
        from braintumor.errors import ConfigError
        from braintumor.models import list_models, model_info

        if task is not None and task not in TASKS:
            raise ConfigError(f"--task {task!r}; expected {one_of(TASKS)}")
        names = {name: model_info(name).task for name in list_models(pattern, task)}
        if json_out:
            emit_json({"models": names})
            return
        for name, kind in names.items():
            out.print(f"{name}\t{kind}", highlight=False)

    run_guarded(go)


@app.command("version")
def version() -> None:
    """Print the package version."""
    from braintumor import __version__

    out.print(__version__)
