"""Command line: ``braintumor <verb>``. Parses arguments and calls library functions.

One Typer app (:data:`braintumor.cli.common.app`); each module registers its verbs on it when imported:

    common       the app, console output, ``--json`` output, progress bars, one-line errors
    options      options shared by several verbs
    data         data inspect / phantoms / split / dedup
    general      demo, models, version
    analyze      analyze, bundle create / info / profile, export
    experiments  compare, sweep-roi
    reports      report, radiogenomics
    serve        serve
    study        experiment run / pipeline / fuse
    train        train segment / classify, cv, evaluate, predict

Verb modules import ``common`` and ``options`` only, never each other or this package's ``__init__``.
"""

from __future__ import annotations

from braintumor.cli.common import app

# Registered in this order, which is the order of `braintumor --help`.
# isort: off
from braintumor.cli import data, general  # noqa: F401
from braintumor.cli import analyze, experiments, reports, serve, study, train  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
