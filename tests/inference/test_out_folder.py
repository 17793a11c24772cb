"""The analysis output folder: inputs are never written over, earlier results need --overwrite,
folders given as input skip earlier outputs, unwritable --out is one line, CSV cells are inert."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from inference_helpers import Trained
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.errors import OutputError
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.out_folder import MARKER, check_out_dir, owner
from braintumor.inference.outputs import csv_safe
from braintumor.inference.sources import collect_inputs

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _analyze(trained: Trained, *args: str, code: int = 0) -> dict[str, Any]:
    """``analyze ARGS --json`` with the session bundle: its JSON, or ``{"output": ...}`` on failure."""
    bundle = ["--bundle", str(trained.bundle), "--backend", "torch"]
    result = runner.invoke(app, ["analyze", *args, *bundle, "--json"])
    assert result.exit_code == code, result.output
    if code:
        return {"output": _flat(result.output)}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _folder(trained: Trained, folder: Path, names: list[str]) -> list[Path]:
    """Phantom PNGs copied into ``folder`` under ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = trained.images(len(names))
    return [Path(shutil.copy(src, folder / name)) for src, name in zip(sources, names, strict=True)]


def test_never_writes_over_an_input(trained: Trained, tmp_path: Path) -> None:
    a, overlay = _folder(trained, tmp_path / "d", ["a.png", "a_overlay.png"])
    before = overlay.read_bytes()
    for flags in ([], ["--overwrite"]):
        out = _analyze(trained, str(a), str(overlay), "--out", str(tmp_path / "d"), *flags, code=1)["output"]
        assert f"{overlay}: is an input, and the analysis would write" in out and f"output of {a}" in out
    assert overlay.read_bytes() == before and not (tmp_path / "d" / "analysis.csv").exists()


def test_input_reached_through_a_link_is_not_written_over(trained: Trained, tmp_path: Path) -> None:
    (target,) = _folder(trained, tmp_path / "out", ["b_mask.png"])
    link = tmp_path / "in" / "b.png"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(OutputError, match=r"b_mask\.png over it"):
        check_out_dir(tmp_path / "out", collect_inputs([link]).items, overwrite=True)


def test_earlier_results_need_overwrite(trained: Trained, tmp_path: Path) -> None:
    image, out = str(trained.images(1)[0]), tmp_path / "out"
    _analyze(trained, image, "--out", str(out))
    table = (out / "analysis.csv").read_bytes()
    message = _analyze(trained, image, "--out", str(out), code=1)["output"]
    assert (
        f"{out}: holds the results of an earlier analysis (analysis.csv" in message
        and "--overwrite" in message
    )
    assert (out / "analysis.csv").read_bytes() == table
    assert _analyze(trained, image, "--out", str(out), "--overwrite")["n_ok"] == 1


def test_folder_input_skips_earlier_outputs(trained: Trained, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    inputs = _folder(trained, folder, ["p1.png", "p2.png"])
    first = _analyze(trained, str(folder), "--out", str(folder), "--gradcam")
    assert first["n_ok"] == 2 and first["n_skipped"] == 0
    marker = json.loads((folder / MARKER).read_text())
    assert marker["complete"] and "p1_overlay.png" in marker["files"] and "analysis.csv" in marker["files"]
    again = _analyze(trained, str(folder), "--out", str(folder), "--overwrite")
    assert [r["input"] for r in again["results"]] == [str(p) for p in inputs]
    assert again["n_skipped"] == 4  # overlays and Grad-CAMs (masks are skipped as masks)
    human = runner.invoke(app, ["analyze", str(folder), "--out", str(folder), "--overwrite", "--bundle",
                                str(trained.bundle), "--backend", "torch"])  # fmt: skip
    assert human.exit_code == 0 and "skipped (files of an earlier analysis)" in _flat(human.output)


def test_outputs_recognised_without_a_finished_marker(trained: Trained, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"  # written before the marker existed
    _folder(trained, legacy, ["s.png", "s_overlay.png", "s_gradcam.png", "x_overlay.png"])
    (legacy / "analysis.csv").write_text("input\n")
    assert [Path(i.source).name for i in collect_inputs([legacy]).items] == ["s.png"]
    plain = tmp_path / "plain"  # no analysis here: a file named like an overlay is an input
    _folder(trained, plain, ["t_overlay.png"])
    assert len(collect_inputs([plain]).items) == 1 and not collect_inputs([plain]).skipped
    crashed = tmp_path / "crashed"
    _folder(trained, crashed, ["u.png", "u_overlay.png"])
    (crashed / MARKER).write_text('{"complete": false, "files": []}')
    found = collect_inputs([crashed])
    assert [Path(i.source).name for i in found.items] == ["u.png"]
    assert found.skipped == [crashed / "u_overlay.png"]


def test_owner() -> None:
    names = {"a": "a.png", "b_s001": "b_s001.png"}
    assert owner("a_s003_overlay.png", names) == owner("A_mask.nii.gz", names) == "a.png"
    assert owner("b_s001.json", names) == "b_s001.png" and owner("a.csv", names) is None
    assert owner("c_overlay.png", names) is None


@pytest.mark.parametrize("out", ["/proc/braintumor-x", "FILE"])
def test_unwritable_out_is_one_line(trained: Trained, tmp_path: Path, out: str) -> None:
    if out == "FILE":
        out = str(tmp_path / "results.txt")
        Path(out).write_text("not a folder")
    image = str(trained.images(1)[0])
    result = runner.invoke(app, ["analyze", image, "--out", out, "--bundle", str(trained.bundle)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith(f"error: {out}: ") and "--out" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_csv_cells_cannot_run_formulas(
    trained: Trained, analyzer: Analyzer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    names = ["=1+1.png", "+a.png", "-b.png", "@c.png"]
    _folder(trained, tmp_path, names)
    Path("=broken.png").write_bytes(b"not a png")
    results = analyzer.analyze_files([*names, "=broken.png"], "out")
    with open("out/analysis.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["input"] for r in rows] == [f"'{n}" for n in [*names, "=broken.png"]]
    assert rows[-1]["error"].startswith("'=broken.png: ")
    with open("out/slices.csv", newline="", encoding="utf-8") as f:
        assert [r["input"] for r in csv.DictReader(f)] == [f"'{n}" for n in names]
    assert json.loads(Path(results[0].outputs["json"]).read_text())["input"] == "=1+1.png"


def test_csv_safe_covers_every_text_cell_and_header() -> None:
    import pandas as pd

    frame = csv_safe(pd.DataFrame({"=x": ["@a", "b", "\tc"], "n": [-1, 2, 3]}))
    assert list(frame.columns) == ["'=x", "n"]
    assert list(frame["'=x"]) == ["'@a", "b", "'\tc"] and list(frame["n"]) == [-1, 2, 3]


def test_output_names_keep_any_script_and_drop_unsafe_characters(
    trained: Trained, analyzer: Analyzer, tmp_path: Path
) -> None:
    names = ["Gehirn_Übersicht.png", "脑.png", "a|b:c?.png", "tab\there.png", "A.png", "a.png", "..x.png"]
    paths = _folder(trained, tmp_path / "in", names)
    results = analyzer.analyze_files(paths, tmp_path / "out")
    assert [r.name for r in results] == ["Gehirn_Übersicht", "脑", "a_b_c_", "tab_here", "A", "a_2", "x"]
    assert (tmp_path / "out" / "脑_overlay.png").is_file() and (tmp_path / "out" / "a_2.json").is_file()


def test_human_output_prints_names_as_text(trained: Trained, tmp_path: Path) -> None:
    (good,) = _folder(trained, tmp_path, ["[bold]y.png"])
    (tmp_path / "[").mkdir()
    broken = tmp_path / "[" / "x].png"  # the path holds "[/x]", a closing markup tag
    broken.write_bytes(b"not a png")
    result = runner.invoke(app, ["analyze", str(broken), str(good), "--out", str(tmp_path / "o"), "--bundle",
                                 str(trained.bundle), "--backend", "torch"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[bold]y.png" in result.output and "1 analysed, 1 failed" in result.output
