"""Class-per-folder image datasets: Kaggle 4-class (``Training|Testing/<class>/*.jpg``), Br35H
(``yes``/``no``) or any user folder of images per class. Split folders map to a predefined split.
"""

from __future__ import annotations

from pathlib import Path

from braintumor.data.index import Sample, SampleIndex
from braintumor.data.readers import IMAGE_SUFFIXES
from braintumor.errors import DataError

DATASET = "folders"
SPLIT_NAMES = {
    "training": "train", "train": "train",
    "testing": "test", "test": "test",
    "validation": "val", "val": "val", "valid": "val",
}  # fmt: skip


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_class_folder_dataset(path: Path) -> bool:
    """True if ``path`` holds class folders of images, directly or under split folders."""
    if not path.is_dir():
        return False
    for sub in _class_dirs(path):
        if sub.name.lower() in SPLIT_NAMES:
            return any(_images(c) for c in _class_dirs(sub))
        if _images(sub):
            return True
    return False


def load_folders(path: str | Path, dataset: str = DATASET) -> SampleIndex:
    """Index images by class folder; no patient ids exist, so each image is its own patient."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "folder not found")
    subdirs = _class_dirs(root)
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_NAMES]
    groups = [(d, SPLIT_NAMES[d.name.lower()]) for d in split_dirs] if split_dirs else [(root, "")]
    found: list[tuple[Path, str, str]] = []  # (file, class, split)
    for folder, split in groups:
        for class_dir in _class_dirs(folder):
            found.extend((f, class_dir.name, split) for f in _images(class_dir))
    if not found:
        raise DataError(root, f"no images ({', '.join(IMAGE_SUFFIXES)}) in class sub-folders")
    classes = sorted({c for _, c, _ in found})
    samples = [
        Sample(dataset, f.relative_to(root).with_suffix("").as_posix(),
               f.relative_to(root).with_suffix("").as_posix(), c, classes.index(c), str(f), "", -1, s)
        for f, c, s in found
    ]  # fmt: skip
    return SampleIndex.from_samples(samples, classes, patient_ids_known=False)
