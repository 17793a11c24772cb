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
MaskFloorOpt = Annotated[
    str | None,
    typer.Option(
        "--mask-confidence-floor",
        help="Weigh an ensemble's crop classifiers by the segmenter's confidence in its mask: 0 weight at "
        "or below this mean tumour probability inside the mask, the whole-slice members and the gate's "
        "tumour classes taking their place; 'off' averages the members alike.",
    ),
]


def mask_floor(value: str) -> float | None:
    """The ``--mask-confidence-floor`` value: None for ``off``, else a probability in [0, 1)."""
    from braintumor.errors import ConfigError

    if value.strip().lower() == "off":
        return None
    try:
        floor = float(value)
    except ValueError:
        floor = float("nan")
    if not 0.0 <= floor < 1.0:
        raise ConfigError(f"--mask-confidence-floor {value!r}; expected 'off' or a probability in [0, 1)")
    return floor
