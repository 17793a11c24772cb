"""Radiogenomics in the spirit of Buda et al. (2019): tumour shape vs LGG genomic clusters.

Shape features per patient (:mod:`braintumor.analysis.shape`) from the dataset's masks or from
predicted masks are joined with ``data.csv`` on the patient id and tested against each genomic
cluster, the histological grade and death (:mod:`braintumor.analysis.stats`). Results are written
as files that ``braintumor report`` turns into a page:

    features.csv        one row per patient: features, then the clinical variables tested
    associations.csv    feature, variable, test, n, groups, statistic, p, q (sorted by p)
    radiogenomics.json  sample sizes, warnings, the strongest associations, method notes
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from braintumor.analysis.masks import PatientMasks, Progress, ground_truth_masks, iter_stacks, predicted_masks
from braintumor.analysis.shape import MIN_SHAPE_AREA, SMOOTH_DEGREES, volume_feature_names, volume_features
from braintumor.analysis.stats import association_table
from braintumor.data.lgg import find_root, read_clinical
from braintumor.errors import DataError
from braintumor.io_utils import atomic_write_json, atomic_write_text

CLUSTERS = ("RNASeqCluster", "MethylationCluster", "miRNACluster", "CNCluster", "RPPACluster",
            "OncosignCluster", "COCCluster")  # fmt: skip
OUTCOMES = ("neoplasm_histologic_grade", "death01")
VARIABLES = (*CLUSTERS, *OUTCOMES)
NOT_TESTED = ("max_slice", "n_tumour_slices", "max_area_mm2", "volume_mm3")  # positions / unit copies
LOW_POWER_N = 30
SIGNIFICANCE_Q = 0.05
SUMMARY_FILE = "radiogenomics.json"
METHODS = (
    "Shape features per patient on the largest-tumour slice (max_*) and as tumour-area-weighted means "
    "over tumour slices (wmean_*), on the largest connected component with holes filled; "
    f"angular SD and margin fluctuation from the radial profile at 1° steps (moving average over "
    f"{SMOOTH_DEGREES}°), shape features undefined under {MIN_SHAPE_AREA} px. Tests: Mann–Whitney U "
    "(2 groups) or Kruskal–Wallis (>2), groups under 2 patients dropped; Fisher's exact test of the "
    "median-split feature against grade and death; missing cells dropped per test; Benjamini–Hochberg "
    "q over all tests."
)


@dataclass
class RadiogenomicsResult:
    """Per-patient features (with the clinical variables), the test table and the summary."""

    features: pd.DataFrame
    associations: pd.DataFrame
    summary: dict[str, Any]


def clinical_path(data: str | Path) -> Path:
    """``data.csv`` for ``data``: the file itself, or the one in the (``kaggle_3m``) folder."""
    data = Path(data)
    if data.is_file():
        return data
    root = find_root(data)
    for folder in (root, data, data / "kaggle_3m"):
        if folder is not None and (folder / "data.csv").is_file():
            return folder / "data.csv"
    raise DataError(data, "no data.csv here; give the LGG kaggle_3m folder or its data.csv")


def tested_features(columns: list[str]) -> list[str]:
    """The feature columns that enter the tests (positions and unit conversions left out)."""
    return [c for c in columns if c not in NOT_TESTED]


def patient_features(
    patients: list[PatientMasks],
    pixel_mm: float | None = None,
    slice_mm: float | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per patient: ``patient_id``, ``n_slices`` and :func:`volume_features`."""
    rows = []
    for patient, masks in iter_stacks(patients, progress):
        features = volume_features(masks, patient.slices, pixel_mm, slice_mm)
        rows.append({"patient_id": patient.patient_id, "n_slices": len(masks), **features})
    names = volume_feature_names()
    extra = [c for c in ("max_area_mm2", "volume_mm3") if rows and c in rows[0]]
    return pd.DataFrame(rows, columns=["patient_id", "n_slices", *names, *extra])


def run_radiogenomics(
    data: str | Path,
    masks: str | Path | None = None,
    pixel_mm: float | None = None,
    slice_mm: float | None = None,
    progress: Progress | None = None,
    top: int = 10,
) -> RadiogenomicsResult:
    """Features, association tests and summary for the LGG patients with masks.

    Args:
        data: the LGG ``kaggle_3m`` folder (or its ``data.csv`` when ``masks`` is given).
        masks: a folder of predicted ``<sample_id>_mask.png``; None uses the dataset's masks.
        pixel_mm: in-plane pixel side in mm, for ``max_area_mm2`` (not published with LGG).
        slice_mm: slice spacing in mm, for ``volume_mm3``.
        progress: ``progress(done, total)`` after each patient.
        top: number of strongest associations listed in the summary.
    """
    clinical = read_clinical(clinical_path(data))
    patients = predicted_masks(masks, data) if masks is not None else ground_truth_masks(data)
    features = patient_features(patients, pixel_mm, slice_mm, progress)
    table = clinical.drop_duplicates("Patient").set_index("Patient")
    joined = features.join(table.loc[:, list(VARIABLES)], on="patient_id")
    matched = features["patient_id"].isin(table.index)
    with_tumour = features["volume_px"] > 0
    analysed = joined[matched & with_tumour].reset_index(drop=True)
    names = tested_features([c for c in features.columns if c not in ("patient_id", "n_slices")])
    associations = association_table(analysed, analysed, names, VARIABLES, OUTCOMES)
    summary = _summary(data, masks, features, matched, with_tumour, associations, top)
    summary = {"n_patients_in_data_csv": int(table.index.nunique()), **summary}
    return RadiogenomicsResult(joined, associations, summary)


def low_power_warning(n: int, n_tests: int) -> str | None:
    """The warning for fewer than :data:`LOW_POWER_N` patients, else None."""
    if n >= LOW_POWER_N:
        return None
    return (
        f"Exploratory only: {n} patients (fewer than {LOW_POWER_N}). Each test has little power, "
        f"q-values over {n_tests} tests will rarely fall below {SIGNIFICANCE_Q}, and any p-value "
        "below 0.05 here is as likely to be chance as signal; confirm on the full cohort."
    )


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")]  # fmt: skip


def _summary(
    data: str | Path,
    masks: str | Path | None,
    features: pd.DataFrame,
    matched: pd.Series,
    with_tumour: pd.Series,
    associations: pd.DataFrame,
    top: int,
) -> dict[str, Any]:
    n = int((matched & with_tumour).sum())
    ran = associations[associations["test"] != "skipped"]
    warning = low_power_warning(n, len(ran))
    return {
        "data": str(data),
        "masks": str(masks) if masks is not None else "ground truth (dataset masks)",
        "n_patients_with_masks": len(features),
        "n_patients": n,
        "patients_without_tumour": sorted(features.loc[~with_tumour, "patient_id"]),
        "patients_without_clinical": sorted(features.loc[~matched, "patient_id"]),
        "n_tests": len(associations),
        "n_tests_run": len(ran),
        "n_significant": int((ran["q"] < SIGNIFICANCE_Q).sum()),
        "significance_q": SIGNIFICANCE_Q,
        "low_power": warning is not None,
        "warning": warning,
        "features": tested_features([c for c in features.columns if c not in ("patient_id", "n_slices")]),
        "variables": list(VARIABLES),
        "top": _records(ran.head(top)),
        "methods": METHODS,
    }


def write_radiogenomics(result: RadiogenomicsResult, out_dir: str | Path) -> dict[str, str]:
    """Write ``features.csv``, ``associations.csv`` and ``radiogenomics.json`` atomically.

    Returns:
        ``{"features": path, "associations": path, "summary": path}``.
    """
    out_dir = Path(out_dir)
    paths = {"features": out_dir / "features.csv", "associations": out_dir / "associations.csv",
             "summary": out_dir / SUMMARY_FILE}  # fmt: skip
    atomic_write_text(paths["features"], result.features.to_csv(index=False))
    atomic_write_text(paths["associations"], result.associations.to_csv(index=False))
    files = {k: str(v) for k, v in paths.items()}
    result.summary["files"] = {k: Path(v).name for k, v in files.items()}
    atomic_write_json(paths["summary"], result.summary)
    return files
