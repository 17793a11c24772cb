"""figshare brain tumour dataset (Cheng et al. 2015): original ``.mat`` files and the PNG conversion.

Original release: ``1.mat … 3064.mat``, each a MATLAB v7.3 (HDF5) struct ``cjdata`` with ``label``
(1 meningioma, 2 glioma, 3 pituitary), ``PID`` (uint16 characters), ``image`` (int16 512² or 256²),
``tumorBorder`` and ``tumorMask``; ``cvind.mat`` holds the official 5 folds. h5py returns MATLAB
arrays transposed. Older MATLAB v5 files are read with scipy.io.

PNG conversion (``images/N.png``, ``masks/N_mask.png``, ``tumor_metadata.csv``) with optional
``figshare_pid.csv`` (patient ids) and ``figshare_cvind_fold.csv`` (official folds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from braintumor.data.index import Sample, SampleIndex
from braintumor.errors import DataError

CLASSES = ["meningioma", "glioma", "pituitary"]
LABEL_CODES = {1: "meningioma", 2: "glioma", 3: "pituitary"}
DATASET = "figshare"


@dataclass(frozen=True)
class FigshareRecord:
    """Content of one ``cjdata`` struct. ``image`` H×W int16; ``mask`` H×W uint8 {0,1}."""

    label: int
    pid: str
    image: np.ndarray
    mask: np.ndarray
    border: np.ndarray


def read_mat(path: str | Path) -> FigshareRecord:
    """Read one figshare ``.mat`` file (v7.3 HDF5 or v5)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    import h5py

    record = _read_v73(path) if h5py.is_hdf5(path) else _read_v5(path)
    if record.label not in LABEL_CODES:
        raise DataError(path, f"cjdata.label={record.label} is not 1, 2 or 3 ({LABEL_CODES})")
    if record.mask.shape != record.image.shape:
        raise DataError(path, f"tumorMask {record.mask.shape} differs from image {record.image.shape}")
    return record


def _read_v73(path: Path) -> FigshareRecord:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "cjdata" not in f:
                raise DataError(path, f"no 'cjdata' struct; top-level keys: {list(f.keys())}")
            cj = f["cjdata"]
            missing = [k for k in ("label", "PID", "image", "tumorMask") if k not in cj]
            if missing:
                raise DataError(path, f"cjdata lacks field(s) {missing}")
            label = int(np.asarray(cj["label"][()]).ravel()[0])
            pid = "".join(chr(int(c)) for c in np.asarray(cj["PID"][()]).ravel() if int(c) != 0)
            image = np.asarray(cj["image"][()]).T
            mask = np.asarray(cj["tumorMask"][()]).T
            border = np.asarray(cj["tumorBorder"][()]).ravel() if "tumorBorder" in cj else np.empty(0)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(path, f"cannot read MATLAB v7.3 file ({type(exc).__name__}: {exc})") from None
    return FigshareRecord(label, pid, image, _as_binary(path, mask), border)


def _read_v5(path: Path) -> FigshareRecord:
    import scipy.io

    try:
        content = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as exc:
        raise DataError(path, f"not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    if "cjdata" not in content:
        raise DataError(path, "no 'cjdata' struct in the MATLAB file")
    cj = content["cjdata"]
    missing = [k for k in ("label", "PID", "image", "tumorMask") if not hasattr(cj, k)]
    if missing:
        raise DataError(path, f"cjdata lacks field(s) {missing}")
    pid = cj.PID if isinstance(cj.PID, str) else "".join(chr(int(c)) for c in np.ravel(cj.PID))
    border = np.ravel(getattr(cj, "tumorBorder", np.empty(0)))
    mask = _as_binary(path, np.asarray(cj.tumorMask))
    return FigshareRecord(int(np.ravel(cj.label)[0]), pid, np.asarray(cj.image), mask, border)


def _as_binary(path: Path, mask: np.ndarray) -> np.ndarray:
    from braintumor.data.preprocess import binarize_mask

    return binarize_mask(path, np.asarray(mask).astype(np.int64))


def read_cvind(path: str | Path) -> np.ndarray:
    """Official fold number (1..5) of each file, index i -> ``(i+1).mat``."""
    path = Path(path)
    import h5py

    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return np.asarray(f["cvind"][()]).ravel().astype(int)
        import scipy.io

        return np.ravel(scipy.io.loadmat(path)["cvind"]).astype(int)
    except Exception as exc:
        raise DataError(path, f"cannot read the 'cvind' fold vector ({type(exc).__name__}: {exc})") from None


def is_figshare_mat_folder(path: Path) -> bool:
    return path.is_dir() and any(p.stem.isdigit() for p in path.glob("*.mat"))


def is_figshare_png_folder(path: Path) -> bool:
    return (path / "tumor_metadata.csv").is_file() and (path / "images").is_dir()


def load_figshare_mat(path: str | Path) -> SampleIndex:
    """Index a folder of original ``N.mat`` files (labels and PIDs read from each file)."""
    root = Path(path)
    files = sorted((p for p in root.glob("*.mat") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not files:
        raise DataError(root, "no figshare N.mat files found")
    samples = []
    for f in files:
        rec = read_mat(f)
        name = LABEL_CODES[rec.label]
        samples.append(Sample(DATASET, f.stem, rec.pid, name, CLASSES.index(name), str(f), str(f)))
    extra = {}
    cvind = root / "cvind.mat"
    if cvind.is_file():
        folds = read_cvind(cvind)
        extra["official_folds"] = {
            f.stem: int(folds[int(f.stem) - 1]) for f in files if int(f.stem) <= len(folds)
        }
    return SampleIndex.from_samples(samples, CLASSES, True, extra)


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(path, f"cannot read CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(frame.columns)}")
    return frame


def load_figshare_png(path: str | Path) -> SampleIndex:
    """Index the PNG conversion; patient ids and official folds come from the side CSVs."""
    root = Path(path)
    meta = _read_csv(root / "tumor_metadata.csv", ["file", "label"])
    pids: dict[str, str] = {}
    pid_csv = root / "figshare_pid.csv"
    if pid_csv.is_file():
        table = _read_csv(pid_csv, ["figshare_index", "pid"])
        pids = dict(zip(table["figshare_index"], table["pid"], strict=True))
    samples = []
    for row in meta.itertuples(index=False):
        stem = Path(str(row.file)).stem
        image = root / "images" / f"{stem}.png"
        if not image.is_file():
            continue  # the metadata lists all 3,064 files; a sample holds a subset
        try:
            name = LABEL_CODES[int(row.label)]
        except (ValueError, KeyError):
            raise DataError(
                root / "tumor_metadata.csv", f"unknown label {row.label!r} for {row.file}"
            ) from None
        mask = root / "masks" / f"{stem}_mask.png"
        samples.append(
            Sample(
                DATASET,
                stem,
                pids.get(stem, f"img{stem}"),  # checked below when a pid table exists
                name,
                CLASSES.index(name),
                str(image),
                str(mask) if mask.is_file() else "",
            )
        )
    if not samples:
        raise DataError(root / "images", "no image listed in tumor_metadata.csv was found")
    unknown = [s.sample_id for s in samples if s.sample_id not in pids]
    if pids and unknown:  # guessed ids would split one patient's slices across folds
        raise DataError(
            pid_csv,
            f"no patient id for {len(unknown)} of {len(samples)} images (e.g. {', '.join(unknown[:3])}); "
            "patient-level splits need every image's patient: add their rows, or remove the file to "
            "split per image",
        )
    extra = {}
    fold_csv = root / "figshare_cvind_fold.csv"
    if fold_csv.is_file():
        table = _read_csv(fold_csv, ["figshare_index", "fold"])
        bad = table.loc[~table["fold"].str.strip().str.fullmatch(r"\d+"), "figshare_index"].tolist()
        if bad:
            raise DataError(fold_csv, f"fold is not a whole number for {len(bad)} row(s) (e.g. {bad[:3]})")
        folds = dict(zip(table["figshare_index"], table["fold"].astype(int), strict=True))
        extra["official_folds"] = {
            s.sample_id: int(folds[s.sample_id]) for s in samples if s.sample_id in folds
        }
    return SampleIndex.from_samples(samples, CLASSES, bool(pids), extra)
