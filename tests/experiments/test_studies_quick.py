"""Every shipped study, end to end with --quick on the shared sample data, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from braintumor.experiments import load_study

REPO = Path(__file__).resolve().parents[2]
STUDIES = sorted((REPO / "configs" / "studies").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("study", STUDIES, ids=[p.stem for p in STUDIES])
def test_quick_study(study: Path, shared_data: Path, tmp_path: Path) -> None:
    run = tmp_path / study.stem
    env = {**os.environ, "BRAINTUMOR_SHARED_DATA": str(shared_data), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from braintumor.cli import app; app()",
               "experiment", "run", str(study), "--out", str(run), "--quick", "--json"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)  # exactly one JSON object on stdout
    record = json.loads((run / "study.json").read_text())
    assert printed["status"] == record["status"] == "done"
    assert all(s["status"] == "ran" for s in record["steps"])
    numbers = [r["mean"] for r in record["table"]]
    assert numbers and all(isinstance(v, int | float) for v in numbers)
    assert (run / "summary.md").is_file() and (run / "report.html").read_text().startswith("<!doctype html>")
    for step in record["steps"]:
        assert step["kind"] == "compare" or (run / step["name"] / "report.html").is_file(), step["name"]
    for spec in load_study(study).steps:  # then_all: the all-patient model beside the folds
        assert not spec.options.get("then_all") or (run / spec.name / "all" / "metrics.json").is_file()
