"""End-to-end smoke test: phantoms -> train (3 models) -> evaluate -> bundle -> analyse -> report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from braintumor.demo import run_demo


def test_demo_quick(tmp_path: Path) -> None:
    summary = run_demo(tmp_path / "demo", console=Console(quiet=True), quick=True)
    assert 0.0 <= summary["segmentation"]["dice_per_patient_mean"] <= 1.0
    assert summary["analysis"]["n"] >= 1 and all(r["ok"] for r in summary["analysis"]["results"])
    for html in summary["reports"].values():
        text = Path(html).read_text()
        assert "data:image/png;base64," in text
    assert (tmp_path / "demo" / "bundle" / "bundle.json").is_file()
    assert (tmp_path / "demo" / "summary.json").is_file()
