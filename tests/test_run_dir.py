"""RunDir names every file of a run folder: the layout on disk round-trips through its properties."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from braintumor.run_dir import RunDir


def _named(run: RunDir) -> set[Path]:
    """Every path a RunDir property names for ``run``."""
    paths = set()
    for name, value in vars(RunDir).items():
        if isinstance(value, property):
            got = getattr(run, name)
            paths.add(got.path if isinstance(got, RunDir) else got)
    return paths


def _files(folder: Path) -> set[Path]:
    return {
        p for p in folder.rglob("*") if p.is_file() and RunDir.PHANTOMS not in p.relative_to(folder).parts
    }


@pytest.mark.parametrize("name", ["seg", "cls"])
def test_every_file_of_a_trained_run_is_named(tiny_runs: Path, name: str) -> None:
    run = RunDir(tiny_runs / name)
    files = _files(run.path)
    assert files and files <= _named(run), sorted(map(str, files - _named(run)))
    for path in (run.config, run.splits, run.history, run.metrics, run.best_weights, run.best_meta):
        assert path.is_file(), path
    assert run.phantoms.is_dir()  # no data.path: the run wrote its phantoms into its own folder
    table = run.per_patient if name == "seg" else run.predictions
    assert table.is_file()
    assert RunDir.of_weights(run.best_weights) == run


def test_layout_names() -> None:
    run = RunDir(Path("runs/x"))
    assert run.best_weights == Path("runs/x/checkpoints/best.safetensors")
    assert run.best_stem.with_suffix(".json") == run.best_meta
    assert run.last_checkpoint == Path("runs/x/checkpoints/last.ckpt")
    assert run.external_eval.metrics == Path("runs/x/eval/metrics.json")
    assert run.roi_arm("1.5").fold(0).splits == Path("runs/x/roi-1.5/fold0/splits.json")
    assert run.gradcam("a.png") == Path("runs/x/gradcam_a.png")
    assert str(run) == os.fspath(run) == str(Path("runs/x"))
    assert RunDir("runs/x") == run  # type: ignore[arg-type]  # a str is taken as a path
    with pytest.raises(FrozenInstanceError):
        run.path = Path("y")  # type: ignore[misc]


def test_fold_navigation(tmp_path: Path) -> None:
    cv = RunDir(tmp_path / "cv")
    for k in (10, 2, 0):
        cv.fold(k).metrics.parent.mkdir(parents=True)
        cv.fold(k).metrics.write_text("{}")
    (cv.path / "fold_notes").mkdir()  # not a fold
    assert list(cv.folds()) == [0, 2, 10]
    assert cv.folds()[2] == cv.fold(2) and cv.fold(2).path == tmp_path / "cv" / "fold2"
    assert cv.fold(2).phantoms == cv.phantoms  # folds share the CV folder's phantoms
    assert cv.phantoms == tmp_path / "cv" / "phantoms"
    assert cv.fold(2).cv_parent() is None  # no cv_metrics.json yet
    cv.cv_metrics.write_text("{}")
    assert cv.fold(2).cv_parent() == cv == RunDir(cv.path / RunDir.ALL).cv_parent()
    assert RunDir(tmp_path / "cv" / "fold_notes").cv_parent() is None


def test_roi_arms_and_gradcams(tmp_path: Path) -> None:
    sweep = RunDir(tmp_path)
    for label in ("2", "1.5", "whole"):
        sweep.roi_arm(label).path.mkdir()
    assert [a.path.name for a in sweep.roi_arms()] == ["roi-1.5", "roi-2", "roi-whole"]
    sweep.gradcam("b.png").write_bytes(b"")
    sweep.gradcam("a.png").write_bytes(b"")
    assert [p.name for p in sweep.gradcams()] == ["gradcam_a.png", "gradcam_b.png"]
