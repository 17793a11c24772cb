"""``<name>_report.html``: written per input on request, self-contained, printable, escaped, and
free of patient identifiers unless asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from inference_helpers import Trained, tumour_images, write_dicom, write_nifti
from PIL import Image
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.errors import OutputError
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.out_folder import check_out_dir, owner
from braintumor.inference.report import ReportContext, report_html
from braintumor.inference.results import RESEARCH_USE, AnalysisResult
from braintumor.inference.sources import Scan, collect_inputs

SERIES = "1.2.826.0.1.3680043.8.498.9"
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "SECRET123", "StudyDate": "20240131"}


def _read(result: AnalysisResult) -> str:
    path = Path(result.outputs["report"])
    assert path.name == f"{result.name}_report.html"
    return path.read_text(encoding="utf-8")


def _self_contained(page: str) -> None:
    """No script, nothing fetched: every src is a data URL, no link to a style sheet."""
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', page))
    assert "@media print" in page and RESEARCH_USE in page


@pytest.fixture(scope="module")
def tumour(trained: Trained, analyzer: Analyzer) -> list[np.ndarray]:
    return tumour_images(trained, analyzer, 3)


def test_image_report(analyzer: Analyzer, tumour: list[np.ndarray], tmp_path: Path) -> None:
    path = tmp_path / "in" / "slice.png"
    path.parent.mkdir()
    Image.fromarray((tumour[0] // 10).astype(np.uint8)).save(path)
    result = analyzer.analyze_files([path], tmp_path / "out", gradcam=True, report=True)[0]
    assert result.ok and result.tumour, result.error
    page = _read(result)
    _self_contained(page)
    assert page.count("data:image/png;base64,") == 2  # the overlay and the Grad-CAM
    assert "slice.png" in page and str(tmp_path) not in page  # the file's name, not its path
    assert f"{result.label} (p = {result.probabilities[result.label]:.3f})" in page
    assert all(c in page for c in analyzer.bundle.classes) and analyzer.bundle.name in page
    assert "phantoms" in page and "Held-out metrics" in page and "torch (fp32)" in page
    saved = json.loads(Path(result.outputs["json"]).read_text())
    assert saved["outputs"]["report"] == result.outputs["report"]


def test_no_report_unless_asked(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    result = analyzer.analyze_files(trained.images(1), tmp_path)[0]
    assert "report" not in result.outputs and not list(tmp_path.glob("*.html"))


def test_nifti_volume_report(analyzer: Analyzer, tumour: list[np.ndarray], tmp_path: Path) -> None:
    volume = np.stack([*tumour, np.zeros_like(tumour[0])], axis=2)  # X×Y×Z, a blank last slice
    path = write_nifti(tmp_path / "brain.nii.gz", volume)
    result = analyzer.analyze_files([path], tmp_path / "out", report=True)[0]
    assert result.ok and result.tumour, result.error
    page = _read(result)
    _self_contained(page)
    assert "brain.nii.gz" in page and "tumour volume" in page and f"{result.volume_mm3:.0f} mm³" in page
    assert page.count("data:image/png;base64,") == len(result.tumour_slices)
    assert page.count('<tr><td class="num">') == len(result.slices)  # one table row per slice
    assert "blank slice" in page


def _patient_series(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for k, image in enumerate(images):
        file = write_dicom(folder / f"{k}.dcm", image, instance=k + 1, z=4.0 * k, series=SERIES)
        ds = pydicom.dcmread(file)
        for key, value in PATIENT.items():
            setattr(ds, key, value)
        ds.save_as(file)
    return folder


def test_dicom_report_names_no_patient_unless_asked(
    analyzer: Analyzer, tumour: list[np.ndarray], tmp_path: Path
) -> None:
    series = _patient_series(tmp_path / "Doe_Jane" / "series", tumour)
    plain = analyzer.analyze_files([series], tmp_path / "out", report=True)[0]
    page = _read(plain)
    _self_contained(page)
    assert "series" in page and "<dt>instances</dt><dd>3</dd>" in page
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # base64 may spell anything
    for secret in ("Doe", "SECRET123", "20240131", str(tmp_path)):
        assert secret not in text
    named = analyzer.analyze_files([series], tmp_path / "named", report=True, identifiers=True)[0]
    page = _read(named)
    assert all(f"<dt>{k}</dt><dd>{v}</dd>" in page for k, v in PATIENT.items())
    assert str(series) in page


def _context(**bundle: Any) -> ReportContext:
    return ReportContext({"name": "b", "models": {}, **bundle}, "torch")


def test_hostile_names_are_escaped(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)>&.png"
    path = tmp_path / "in" / hostile
    path.parent.mkdir()
    path.write_bytes(trained.images(1)[0].read_bytes())
    page = _read(analyzer.analyze_files([path], tmp_path / "out", report=True)[0])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;&amp;.png" in page
    scan = Scan("<b>x</b>.png", "x", "image", np.zeros((1, 8, 8), np.uint8))
    result = AnalysisResult("x", name="x", tumour=True, label="<i>c</i>", probabilities={"<i>c</i>": 0.9},
                            notes=["<u>note</u>"], warning="<em>odd</em>")  # fmt: skip
    bundle = _context(name="<script>alert(1)</script>", data="<b>data</b>",
                      models={"seg": {"model": {"name": "<s>net</s>"}, "metrics": {"<m>": 0.5}}})  # fmt: skip
    page = report_html(scan, result, bundle)
    assert not re.search(r"<(?:script|b|i|u|em|s|m)>", page)
    assert all(f"&lt;{tag}&gt;" in page for tag in ("script", "b", "i", "u", "em", "s", "m"))


def test_cli_report(trained: Trained, tmp_path: Path) -> None:
    image, out = str(trained.images(1)[0]), tmp_path / "out"
    args = [
        "analyze",
        image,
        "--out",
        str(out),
        "--bundle",
        str(trained.bundle),
        "--backend",
        "torch",
        "--json",
    ]
    result = CliRunner().invoke(app, [*args, "--report-identifiers"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout.strip().splitlines()[-1])["results"][0]
    page = Path(entry["outputs"]["report"]).read_text(encoding="utf-8")
    assert RESEARCH_USE in page and f"<dt>path</dt><dd>{image}</dd>" in page


def test_reports_are_analysis_outputs(trained: Trained, analyzer: Analyzer, tmp_path: Path) -> None:
    assert owner("a_report.html", {"a": "a.png"}) == owner("A_REPORT.HTML", {"a": "a.png"}) == "a.png"
    assert owner("a_s003_report.html", {"a": "a.png"}) is None
    image = trained.images(1)[0]
    (tmp_path / f"{image.stem}_report.html").write_text("earlier")
    with pytest.raises(OutputError, match=r"earlier analysis .*_report\.html"):
        check_out_dir(tmp_path, collect_inputs([image]).items, overwrite=False)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "p.png").write_bytes(image.read_bytes())
    analyzer.analyze_files([folder], folder, report=True)
    again = analyzer.analyze_files(collect_inputs([folder]), folder, overwrite=True, report=True)
    assert [Path(r.input).name for r in again] == ["p.png"] and Path(again[0].outputs["report"]).is_file()
    assert "p_report.html" in json.loads((folder / ".braintumor-analysis.json").read_text())["files"]


def test_report_prints_on_a4_without_fetching(
    browser_page: Any, analyzer: Analyzer, tumour: list[np.ndarray], tmp_path: Path
) -> None:
    path = write_nifti(tmp_path / "brain.nii.gz", np.stack(tumour, axis=2))
    report = Path(analyzer.analyze_files([path], tmp_path / "out", report=True)[0].outputs["report"])
    requests: list[str] = []
    browser_page.on("request", lambda r: requests.append(r.url))
    browser_page.goto(report.as_uri())
    assert requests == [report.as_uri()]  # figures and styles are inline
    assert browser_page.locator("figure img").count() >= 1
    assert all(browser_page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth > 0)"))
    pdf = browser_page.pdf(format="A4")
    pages = int(re.findall(rb"/Count (\d+)", pdf)[0])
    assert pages >= 4  # input and findings, figures, slices, model: each on its own page
