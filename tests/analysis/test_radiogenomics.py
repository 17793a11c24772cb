"""Radiogenomics end to end: synthetic predicted masks + data.csv, and the real LGG sample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import draw
from typer.testing import CliRunner

from braintumor.analysis.masks import predicted_masks
from braintumor.analysis.radiogenomics import (
    CLUSTERS,
    clinical_path,
    low_power_warning,
    run_radiogenomics,
    write_radiogenomics,
)
from braintumor.cli import app
from braintumor.data.lgg import CLINICAL_COLUMNS
from braintumor.errors import DataError


def _write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _fake_cohort(tmp_path: Path, n: int = 12) -> tuple[Path, Path]:
    """``n`` patients of 3 slices; odd patients have elongated tumours and RNASeqCluster 2; the last
    patient's masks are empty; a ``data.csv`` with every documented column."""
    masks = tmp_path / "pred"
    rows = []
    for i in range(n):
        folder = f"TCGA_ZZ_{i:04d}_20000101"
        for s in (1, 2, 3):
            mask = np.zeros((48, 48), np.uint8)
            if i < n - 1 and s > 1:
                a, b = (18, 6) if i % 2 else (12, 11)
                rr, cc = draw.ellipse(24, 24, b + s, a + s, shape=mask.shape)
                mask[rr, cc] = 1
            _write_mask(masks / folder / f"{folder}_{s}_mask.png", mask)
        row = dict.fromkeys(CLINICAL_COLUMNS, 1.0)
        row.update(Patient=f"TCGA_ZZ_{i:04d}", RNASeqCluster=2.0 if i % 2 else 1.0, death01=float(i % 2),
                   neoplasm_histologic_grade=np.nan if i == 0 else 1.0 + (i % 3 == 0))  # fmt: skip
        rows.append(row)
    csv = tmp_path / "data.csv"
    pd.DataFrame(rows, columns=list(CLINICAL_COLUMNS)).to_csv(csv, index=False)
    return csv, masks


def test_predicted_masks_group_by_patient_in_slice_order(tmp_path: Path) -> None:
    _, masks = _fake_cohort(tmp_path, n=3)
    patients = predicted_masks(masks)
    assert [p.patient_id for p in patients] == ["TCGA_ZZ_0000", "TCGA_ZZ_0001", "TCGA_ZZ_0002"]
    assert patients[0].slices == [1, 2, 3]
    (masks / "scan_mask.png").write_bytes((masks / patients[0].paths[0]).read_bytes())
    with pytest.raises(DataError, match="cannot tell the patient"):
        predicted_masks(masks)


def test_synthetic_cohort_finds_the_planted_association(tmp_path: Path) -> None:
    csv, masks = _fake_cohort(tmp_path)
    result = run_radiogenomics(csv, masks)
    summary = result.summary
    assert summary["n_patients_with_masks"] == 12 and summary["n_patients"] == 11
    assert summary["patients_without_tumour"] == ["TCGA_ZZ_0011"]
    assert summary["low_power"] and "11 patients" in summary["warning"]
    no_tumour = result.features.set_index("patient_id").loc["TCGA_ZZ_0011"]
    assert no_tumour["volume_px"] == 0 and math.isnan(no_tumour["max_eccentricity"])
    table = result.associations
    top = table[(table["feature"] == "max_axis_ratio") & (table["variable"] == "RNASeqCluster")].iloc[0]
    assert top["test"] == "mann-whitney" and top["n"] == 11 and top["p"] < 0.01
    skipped = table[table["variable"] == CLUSTERS[1]]  # every patient in cluster 1
    assert (skipped["test"] == "skipped").all()
    grade = table[(table["variable"] == "neoplasm_histologic_grade") & (table["test"] != "fisher-median")]
    assert (grade["n"] == 10).all()  # patient 0 lacks a grade, patient 11 a tumour
    assert {"fisher-median", "mann-whitney", "skipped"} <= set(table["test"])
    files = write_radiogenomics(result, tmp_path / "out")
    saved = json.loads(Path(files["summary"]).read_text())
    assert saved["top"][0]["p"] == pytest.approx(table.iloc[0]["p"])
    assert pd.read_csv(files["associations"]).shape == table.shape


def test_low_power_warning_threshold() -> None:
    assert low_power_warning(30, 10) is None
    assert "Exploratory" in str(low_power_warning(8, 10))


def test_clinical_path_needs_data_csv(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.csv"):
        clinical_path(tmp_path)


def test_cli_radiogenomics_writes_table_figure_and_report(tmp_path: Path) -> None:
    csv, masks = _fake_cohort(tmp_path)
    out = tmp_path / "rg"
    result = CliRunner().invoke(app, ["radiogenomics", "--data", str(csv), "--masks", str(masks),
                                      "--out", str(out), "--top", "4", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_patients"] == 11 and summary["low_power"]
    for name in ("features.csv", "associations.csv", "radiogenomics.json", "associations.png", "report.html"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Exploratory only" in html and "max_axis_ratio" in html


@pytest.mark.realdata
def test_real_lgg_sample_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "lgg" / "kaggle_3m"
    out = tmp_path / "rg"
    result = CliRunner().invoke(app, ["radiogenomics", "--data", str(data), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_patients"] == 8 and summary["n_patients_in_data_csv"] == 110
    assert summary["low_power"] and "8 patients" in summary["warning"]
    table = pd.read_csv(out / "associations.csv")
    assert list(table.columns) == ["feature", "variable", "test", "n", "groups", "statistic", "p", "q"]
    assert (table["n"] <= 8).all() and table["q"].dropna().between(0, 1).all()
    features = pd.read_csv(out / "features.csv")
    assert len(features) == 8 and (features["volume_px"] > 0).all()
    assert features["max_circularity"].between(0, 1.1).all()
    assert (out / "associations.png").stat().st_size > 10_000


@pytest.mark.realdata
def test_real_masks_as_predictions_match_ground_truth(shared_data: Path, tmp_path: Path) -> None:
    """Writing the dataset's masks as <sample_id>_mask.png and reading them back gives the same features."""
    from braintumor.data.lgg import load_lgg
    from braintumor.data.readers import read_mask

    data = shared_data / "lgg" / "kaggle_3m"
    index = load_lgg(data).for_patients(["TCGA_CS_4942", "TCGA_HT_7602"])
    for row in index.frame.itertuples(index=False):
        _write_mask(tmp_path / "pred" / f"{row.sample_id}_mask.png", read_mask(row.mask))
    predicted = run_radiogenomics(data, tmp_path / "pred").features.set_index("patient_id")
    truth = run_radiogenomics(data).features.set_index("patient_id").loc[predicted.index]
    pd.testing.assert_frame_equal(predicted, truth)
