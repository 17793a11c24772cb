"""Detect a dataset's layout from a path and load it as a SampleIndex."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from braintumor.data import figshare, folders, lgg, phantom
from braintumor.data.index import SampleIndex
from braintumor.errors import DataError
from braintumor.registry import Registry

KAGGLE4_CLASSES = {"glioma", "meningioma", "notumor", "pituitary"}


@dataclass(frozen=True)
class DatasetFormat:
    """A loader and the test that recognises its layout."""

    detect: Callable[[Path], bool]
    load: Callable[[Path], SampleIndex]
    description: str


FORMATS: Registry[DatasetFormat] = Registry("dataset format", "or auto, to detect it from the layout")


def _load_index_file(path: Path) -> SampleIndex:
    return SampleIndex.load(path / "index.csv" if path.is_dir() else path)


def _load_class_folders(path: Path) -> SampleIndex:
    index = folders.load_folders(path)
    if set(index.classes) == KAGGLE4_CLASSES:
        index.frame["dataset"] = "kaggle4"
    return index


FORMATS.register("phantom")(
    DatasetFormat(phantom.is_phantom_folder, phantom.load_phantoms, "seeded synthetic phantoms")
)
FORMATS.register("index")(
    DatasetFormat(
        lambda p: (p.is_file() and p.suffix in (".csv", ".parquet")) or (p / "index.csv").is_file(),
        _load_index_file,
        "a saved SampleIndex (index.csv / .parquet)",
    )
)
FORMATS.register("lgg")(
    DatasetFormat(lambda p: lgg.find_root(p) is not None, lgg.load_lgg, "LGG kaggle_3m TIFF slices")
)
FORMATS.register("figshare-mat")(
    DatasetFormat(figshare.is_figshare_mat_folder, figshare.load_figshare_mat, "figshare original .mat")
)
FORMATS.register("figshare-png")(
    DatasetFormat(figshare.is_figshare_png_folder, figshare.load_figshare_png, "figshare PNG conversion")
)
FORMATS.register("folders")(
    DatasetFormat(folders.is_class_folder_dataset, _load_class_folders, "class-per-folder images")
)
DETECTION_ORDER = ("phantom", "index", "lgg", "figshare-mat", "figshare-png", "folders")


def detect_format(path: str | Path) -> str:
    """Name of the format whose layout ``path`` matches."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "path not found")
    if path.is_dir() and not any(path.iterdir()):
        raise DataError(path, "folder is empty")
    for name in DETECTION_ORDER:
        if FORMATS.get(name).detect(path):
            return name
    known = "; ".join(f"{n}: {FORMATS.get(n).description}" for n in DETECTION_ORDER)
    raise DataError(path, f"no known dataset layout recognised. Known layouts: {known}")


def load_dataset(path: str | Path, format: str = "auto") -> SampleIndex:
    """Load the dataset at ``path`` (``format`` = a name from ``FORMATS`` or ``auto``)."""
    path = Path(path)
    name = detect_format(path) if format == "auto" else format
    return FORMATS.get(name).load(path)
