"""Command-line options shared by several verbs (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Experiment YAML (configs/*.yaml).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Dataset folder (overrides data.path).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run folder to write.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override, e.g. --set train.epochs=3 (repeatable).")
]
FoldsOpt = Annotated[int | None, typer.Option("--folds", help="k (default: data.folds).")]
OnlyOpt = Annotated[list[int] | None, typer.Option("--only", help="Only these folds (repeatable).")]
InitOpt = Annotated[
    Path | None,
    typer.Option(
        "--init-from", help="A braintumor .safetensors checkpoint or torchvision-layout ImageNet weights."
    ),
]
