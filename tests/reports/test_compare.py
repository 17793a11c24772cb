"""``compare`` reads run folders (single-fold and CV) into one table: rows, Markdown, CSV, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

import braintumor.cli.experiments  # noqa: F401  (registers compare / sweep-roi)
from braintumor.cli import app
from braintumor.errors import DataError
from braintumor.models import count_parameters, create_model
from braintumor.reports.compare import (
    compare_runs,
    count_safetensors_parameters,
    read_run,
    to_markdown,
    write_comparison,
)


def _weights(folder: Path, name: str = "cnn-small", **kw: int) -> int:
    model = create_model(name, in_channels=1, **kw)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "checkpoints" / "best.safetensors"))  # fmt: skip
    return count_parameters(model)


def _config(folder: Path, task: str, model: str, roi: float | None, init_from: str = "") -> None:
    cfg = {"data": {"roi_expansion": roi}, "model": {"name": model, "init_from": init_from},
           "train": {"task": task}}  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, object]:
    """A pretrained single-fold classifier, a 2-fold CV classifier and a single-fold U-Net."""
    single = tmp_path / "single"
    single.mkdir()
    _config(single, "classify", "cnn-small", 1.5, init_from="/weights/imagenet-cnn.pth")
    n_single = _weights(single, num_classes=4)
    metrics = {"task": "classify", "fold": 0, "accuracy": 0.8, "balanced_accuracy": 0.75,
               "macro_f1": 0.7, "train_seconds": 12.0}  # fmt: skip
    (single / "metrics.json").write_text(json.dumps(metrics))
    (single / "checkpoints" / "best.json").write_text(json.dumps({"task": "classify"}))
    cv = tmp_path / "cv"
    cv.mkdir()
    _config(cv, "classify", "cnn-small", None)
    n_cv = _weights(cv / "fold1", num_classes=4)
    summary = {"task": "classify", "n_folds": 2,
               "mean": {"accuracy": 0.9, "balanced_accuracy": 0.88, "macro_f1": 0.85, "train_seconds": 30.0},
               "std": {"accuracy": 0.05, "balanced_accuracy": 0.04, "macro_f1": 0.03, "train_seconds": 2.0},
               "folds": [{"fold": 0}, {"fold": 1}]}  # fmt: skip
    (cv / "cv_metrics.json").write_text(json.dumps(summary))
    seg = tmp_path / "seg"
    seg.mkdir()
    _config(seg, "segment", "unet", None)
    (seg / "metrics.json").write_text(
        json.dumps({"task": "segment", "dice_per_patient_mean": 0.6, "iou": 0.5})
    )
    return {"single": single, "cv": cv, "seg": seg, "n_single": n_single, "n_cv": n_cv}


def test_rows_from_single_and_cv_runs(runs: dict[str, object]) -> None:
    single, cv = read_run(runs["single"]), read_run(runs["cv"])  # type: ignore[arg-type]
    assert single["kind"] == "single" and single["accuracy"] == 0.8 and single["accuracy_std"] is None
    assert single["init"] == "pretrained" and single["init_from"] == "imagenet-cnn.pth"
    assert single["roi_expansion"] == 1.5 and single["parameters"] == runs["n_single"]
    assert cv["kind"] == "cv" and cv["n_folds"] == 2 and cv["init"] == "scratch"
    assert cv["accuracy"] == 0.9 and cv["accuracy_std"] == 0.05 and cv["train_seconds"] == 30.0
    assert cv["roi_expansion"] is None and cv["parameters"] == runs["n_cv"]  # weights of fold1 only


def test_parameter_count_skips_batchnorm_buffers(tmp_path: Path) -> None:
    n = _weights(tmp_path, num_classes=3)
    assert count_safetensors_parameters(tmp_path / "checkpoints" / "best.safetensors") == n
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"bad\.safetensors"):
        count_safetensors_parameters(tmp_path / "bad.safetensors")


def test_markdown_and_csv(runs: dict[str, object], tmp_path: Path) -> None:
    rows = compare_runs([runs["single"], runs["cv"], runs["seg"]])  # type: ignore[list-item]
    text = to_markdown(rows)
    assert "0.900 ± 0.050" in text and "pretrained (imagenet-cnn.pth)" in text
    assert "Dice per patient" in text and text.count("\n") == 2 + len(rows)
    frame = pd.read_csv(write_comparison(rows, tmp_path / "t.csv"))
    assert list(frame["run"]) == ["single", "cv", "seg"] and frame.loc[1, "accuracy_std"] == 0.05
    with pytest.raises(DataError, match=r"\.md or \.csv"):
        write_comparison(rows, tmp_path / "t.txt")


def test_folder_of_runs_expands_and_non_runs_fail(runs: dict[str, object], tmp_path: Path) -> None:
    rows = compare_runs([tmp_path])
    assert sorted(r["run"] for r in rows) == [f"{tmp_path.name}/{n}" for n in ("cv", "seg", "single")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a run folder"):
        compare_runs([tmp_path / "empty"])


def test_cli_json_and_markdown_file(runs: dict[str, object], tmp_path: Path) -> None:
    runner = CliRunner()
    table = tmp_path / "out" / "table.md"
    result = runner.invoke(
        app, ["compare", str(runs["single"]), str(runs["cv"]), "--out", str(table), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["run"] for r in payload["rows"]] == ["single", "cv"]
    assert table.read_text().startswith("| run | task | model |")
    result = runner.invoke(app, ["compare", str(runs["single"]), str(runs["cv"])])
    assert result.exit_code == 0 and "Runs" in result.stdout and "single" in result.stdout
    missing = tmp_path / ("a-long-folder-name-" * 6) / "missing"  # wider than any terminal default
    result = runner.invoke(app, ["compare", str(missing)])
    assert result.exit_code == 1 and f"{missing}: run folder not found" in result.output
    assert result.output.count("\n") == 1  # one line, never wrapped: greppable in a log
