"""io_utils: output file names (safe in any file system, any script kept, unique) and strict JSON
(non-finite numbers written as null, never NaN, which strict parsers reject)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from braintumor.cli.common import emit_json
from braintumor.io_utils import atomic_write_json, json_text, safe_stem, unique_name


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("Gehirn_Übersicht", "Gehirn_Übersicht"),
        ("Gehirn_U\u0308bersicht", "Gehirn_Übersicht"),  # macOS (NFD) spelling
        ("脑", "脑"),
        ("МРТ 1.v2", "МРТ 1.v2"),
        ('a<>:"/\\|?*b', "a_b"),
        ("line\nbreak\x00nul", "line_break_nul"),
        ("x\u202egnp.exe", "x_gnp.exe"),  # right-to-left override
        ("bad\udcffbyte", "bad_byte"),  # undecodable byte (surrogate escape)
        ("..hidden. ", "hidden"),
        ("CON", "_CON"),
        ("...", "input"),
    ],
)
def test_safe_stem(name: str, stem: str) -> None:
    assert safe_stem(name) == stem


def test_safe_stem_length_in_bytes() -> None:
    stem = safe_stem("脑" * 100, max_bytes=120)
    assert stem == "脑" * 40 and len(stem.encode()) == 120


def test_unique_name_fold_case() -> None:
    taken: set[str] = set()
    assert [unique_name(n, taken, fold_case=True) for n in ["A", "a", "a_2", "ß", "SS"]] == [
        "A", "a_2", "a_2_2", "ß", "SS_2"
    ]  # fmt: skip
    exact: set[str] = set()
    assert [unique_name(n, exact) for n in ["A", "a", "A"]] == ["A", "a", "A_2"]


VALUES = {"dice": math.nan, "hd95": [1.5, math.inf, np.float32("nan")], "n": np.int64(3),
          "table": ({"p": -math.inf},), "mean": np.float64(0.25), "where": Path("runs/a")}  # fmt: skip
STRICT = {"dice": None, "hd95": [1.5, None, None], "n": 3, "table": [{"p": None}], "mean": 0.25,
          "where": "runs/a"}  # fmt: skip


def strict_loads(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_metrics_file_is_strict_json(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "metrics.json", VALUES)
    assert strict_loads((tmp_path / "metrics.json").read_text()) == STRICT


def test_json_output_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json(VALUES)
    assert strict_loads(capsys.readouterr().out) == STRICT
    assert json_text({"a": 1}) == '{"a": 1}'
