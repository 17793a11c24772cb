"""LGG MRI segmentation dataset (Buda et al. 2019), as published on Kaggle.

Layout: ``kaggle_3m/<patient>/<patient>_<n>.tif`` (256×256×3 uint8: pre-contrast, FLAIR,
post-contrast) with ``<patient>_<n>_mask.tif`` (FLAIR abnormality, {0,255}) and ``data.csv``
(genomic clusters and clinical data per patient, joined on the folder name without its date).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from braintumor.data.index import Sample, SampleIndex
from braintumor.errors import DataError

DATASET = "lgg"
FLAIR_CHANNEL = 1  # channel order of the release: pre-contrast, FLAIR, post-contrast
CLASSES = ["glioma"]  # every LGG patient has a lower-grade glioma; masks carry the information
CLINICAL_COLUMNS = (
    "Patient", "RNASeqCluster", "MethylationCluster", "miRNACluster", "CNCluster", "RPPACluster",
    "OncosignCluster", "COCCluster", "histological_type", "neoplasm_histologic_grade",
    "tumor_tissue_site", "laterality", "tumor_location", "gender", "age_at_initial_pathologic",
    "race", "ethnicity", "death01",
)  # fmt: skip
_PATIENT_DIR = re.compile(r"^(TCGA_[A-Z0-9]{2}_[A-Z0-9]{4})_\d{8}$")
_SLICE = re.compile(r"^(?P<folder>.+)_(?P<n>\d+)$")


def find_root(path: str | Path) -> Path | None:
    """The ``kaggle_3m`` folder (``path`` itself or its child), or None if this is not LGG."""
    path = Path(path)
    for candidate in (path, path / "kaggle_3m"):
        if candidate.is_dir() and any(_PATIENT_DIR.match(p.name) for p in candidate.iterdir() if p.is_dir()):
            return candidate
    return None


def patient_id(folder_name: str) -> str:
    """``TCGA_CS_4942_19970222`` -> ``TCGA_CS_4942`` (the ``data.csv`` key)."""
    match = _PATIENT_DIR.match(folder_name)
    return match.group(1) if match else folder_name


def tcga_site(pid: str) -> str:
    """The tissue-source site of a TCGA patient id (``TCGA_CS_4942`` -> ``CS``: the institution
    that contributed the scans; the LGG release has CS, DU, EZ, FG, HT)."""
    parts = pid.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == "TCGA" else "unknown"


def read_clinical(path: str | Path) -> pd.DataFrame:
    """Read ``data.csv``; every documented column must be present."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "data.csv not found next to the patient folders (clinical data)")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise DataError(path, f"cannot read data.csv ({exc})") from None
    missing = [c for c in CLINICAL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(path, f"data.csv lacks column(s) {missing}; expected {list(CLINICAL_COLUMNS)}")
    return frame


def load_lgg(path: str | Path) -> SampleIndex:
    """Index every slice of every patient folder.

    Slices without a mask file keep an empty ``mask`` (``inspect`` reports them); ``data.csv``,
    when present next to the patient folders, becomes ``index.extra["clinical"]``.
    """
    root = find_root(path)
    if root is None:
        raise DataError(path, "no LGG patient folders (TCGA_XX_XXXX_YYYYMMDD) found")
    samples: list[Sample] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _PATIENT_DIR.match(p.name)):
        pid = patient_id(folder.name)
        for tif in folder.glob("*.tif"):
            if tif.stem.endswith("_mask"):
                continue
            match = _SLICE.match(tif.stem)
            if match is None or match.group("folder") != folder.name:
                continue
            mask = tif.with_name(f"{tif.stem}_mask.tif")
            samples.append(
                Sample(DATASET, tif.stem, pid, CLASSES[0], 0, str(tif),
                       str(mask) if mask.is_file() else "", int(match.group("n")))
            )  # fmt: skip
    if not samples:
        raise DataError(root, "patient folders hold no <patient>_<n>.tif slices")
    samples.sort(key=lambda s: (s.patient_id, s.slice))
    extra: dict[str, object] = {
        "problems": [],
        "sites": {s.patient_id: tcga_site(s.patient_id) for s in samples},
    }
    clinical = root / "data.csv"
    try:
        extra["clinical"] = read_clinical(clinical)
    except DataError as exc:  # slices stay usable for segmentation; inspect reports it
        extra["problems"] = [(exc.path, exc.problem)]
    return SampleIndex.from_samples(samples, CLASSES, True, extra)
