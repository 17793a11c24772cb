"""The analysis output folder: which files an analysis writes there, and what it must not write over.

An analysis writes per-input files named after each input's output stem (``<name>.json``,
``<name>_overlay.png``, ``<name>_seg.dcm``, ``<name>_report.html``...; see
:mod:`~braintumor.inference.outputs`), the tables ``analysis.csv`` and ``slices.csv``, and a
marker, :data:`MARKER`, listing every analysis file in the folder. The marker lets later runs
recognise those files: a folder given as input skips them, and an output folder holding results
is refused unless ``overwrite`` is set. An input is never written over, whatever the flags.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from braintumor import __version__
from braintumor.errors import OutputError
from braintumor.io_utils import atomic_write_json


class InputItem(Protocol):
    """What the output-folder checks read of an input (:class:`~braintumor.inference.sources.InputItem`)."""

    @property
    def source(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def files(self) -> tuple[Path, ...]: ...


MARKER = ".braintumor-analysis.json"
TABLES = ("analysis.csv", "slices.csv")
FIXED = (*TABLES, MARKER)
_PER_INPUT = re.compile(
    r"(?:_s\d{3,})?_(?:overlay|mask|gradcam)\.png|_mask\.nii\.gz|_seg\.dcm|_report\.html|\.json",
    re.IGNORECASE,
)
"""What follows ``<name>`` in the name of a per-input output file."""
_LOOKS_LIKE_OUTPUT = re.compile(r".+_(?:overlay|gradcam)\.png|.+_seg\.dcm", re.IGNORECASE)
"""Outputs recognised by name alone (``*_mask.*`` files are skipped as ground-truth masks anyway)."""


def owner(filename: str, names: Mapping[str, str]) -> str | None:
    """``names[key]`` for the output stem ``key`` (case-folded) that ``filename`` is a per-input
    output of, e.g. ``a_s003_overlay.png`` -> ``names["a"]``; ``None`` when it is none's."""
    for cut in range(1, len(filename)):
        key = filename[:cut].casefold()
        if key in names and _PER_INPUT.fullmatch(filename[cut:]):
            return names[key]
    return None


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker in ``folder``; ``None`` without one, ``{}`` (an unfinished analysis) when it is
    unreadable."""
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _listed(marker: Mapping[str, Any]) -> set[str]:
    files = marker.get("files")
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and "/" not in f and "\\" not in f}


def _folder_test(folder: Path) -> Callable[[str], bool]:
    """Whether a file name in ``folder`` is an earlier analysis's output: listed in its marker; by
    name as well when the analysis did not finish or predates the marker (``analysis.csv`` only)."""
    marker = read_marker(folder)
    listed = _listed(marker) if marker is not None else set()
    unfinished = marker is not None and marker.get("complete") is not True
    by_name = unfinished or (marker is None and (folder / "analysis.csv").is_file())

    def test(name: str) -> bool:
        return name in listed or name in FIXED or bool(by_name and _LOOKS_LIKE_OUTPUT.fullmatch(name))

    return test


def output_filter() -> Callable[[Path], bool]:
    """A predicate telling whether a file was written by an earlier analysis (cached per folder)."""
    tests: dict[Path, Callable[[str], bool]] = {}

    def is_output(file: Path) -> bool:
        if file.parent not in tests:
            tests[file.parent] = _folder_test(file.parent)
        return tests[file.parent](file.name)

    return is_output


def _entries(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return [e.name for e in it if e.is_file()]


def _outputs_in(out: Path, names: Mapping[str, str]) -> list[str]:
    """Files in ``out`` that an analysis of inputs with these output stems writes."""
    found = [n for n in _entries(out) if n in TABLES or owner(n, names) is not None]
    return sorted(found, key=lambda n: (n not in TABLES, n))


def check_out_dir(out: Path, items: Sequence[InputItem], overwrite: bool) -> None:
    """Refuse to write over an input, and (without ``overwrite``) over an earlier analysis.

    Raises:
        OutputError: an input is a file the analysis would write, or ``out`` holds such files.
    """
    names = {item.name.casefold(): item.source for item in items}
    _refuse_overwriting_inputs(out, items, names)
    if overwrite:
        return
    found = _outputs_in(out, names)
    if found:
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise OutputError(
            out, f"holds the results of an earlier analysis ({', '.join(found[:3])}{more}); "
            "pass --overwrite to replace them, or choose another --out folder",
        )  # fmt: skip


def _refuse_overwriting_inputs(out: Path, items: Sequence[InputItem], names: Mapping[str, str]) -> None:
    """Raise when an input file, or the file a linked input points to, is one the analysis writes."""
    here = out.resolve()
    for item in items:
        for file in item.files:
            if not file.is_file():
                continue
            for place in {file.parent.resolve() / file.name, file.resolve()}:  # the link and its target
                if place.parent != here:
                    continue
                writer = "the analysis" if place.name in FIXED else owner(place.name, names)
                if writer is not None:
                    raise OutputError(
                        file, f"is an input, and the analysis would write {out / place.name} over it "
                        f"(output of {writer}); choose an --out folder that holds no inputs "
                        f"(e.g. {out / 'analysis'}) or move the input out of {out}",
                    )  # fmt: skip


def record_outputs(out: Path, names: Iterable[str], complete: bool) -> None:
    """Write the marker: the analysis files now in ``out`` (earlier ones that are still there, the
    tables, and the per-input outputs of these output stems); ``complete`` once the run is done."""
    earlier = read_marker(out) or {}
    files = {f for f in _listed(earlier) if (out / f).is_file()}
    files.update(_outputs_in(out, {n.casefold(): n for n in names}))
    record = {"written_by": "braintumor analyze", "version": __version__, "complete": complete,
              "files": sorted(files)}  # fmt: skip
    atomic_write_json(out / MARKER, record)
