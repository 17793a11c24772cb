"""Strict JSON: non-finite numbers are written as null, never NaN (strict parsers reject it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from braintumor.cli import emit_json
from braintumor.io_utils import atomic_write_json, json_text

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
