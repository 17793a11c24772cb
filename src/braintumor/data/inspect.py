"""Inspect a dataset: counts per class and patient, tumour slices, sizes, and every bad file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from braintumor.data.index import SampleIndex
from braintumor.data.loaders import detect_format, load_dataset
from braintumor.data.readers import read_image, read_mask
from braintumor.errors import DataError


@dataclass
class InspectReport:
    """What ``braintumor data inspect`` prints (``--json`` gives ``to_dict()``)."""

    path: str
    format: str
    n_samples: int = 0
    n_patients: int = 0
    n_with_tumour: int = 0
    n_with_mask: int = 0
    patient_ids_known: bool = True
    per_class: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_sample(image_path: str, mask_path: str) -> tuple[str | None, bool | None, list[dict[str, str]]]:
    """Decode one sample; returns (size key, mask has tumour, problems)."""
    problems = []
    try:
        image = read_image(image_path)
    except DataError as exc:
        return None, None, [{"file": exc.path, "problem": exc.problem}]
    channels = 1 if image.ndim == 2 else image.shape[2]
    size = f"{image.shape[0]}x{image.shape[1]}x{channels}"
    tumour = None
    if mask_path:
        try:
            tumour = bool(read_mask(mask_path, image.shape[:2]).any())
        except DataError as exc:
            problems.append({"file": exc.path, "problem": exc.problem})
    return size, tumour, problems


def inspect_index(
    index: SampleIndex, path: str, format: str, progress: Callable[[int, int], None] | None = None
) -> InspectReport:
    """Decode every image and mask of ``index`` and collect counts and problems."""
    frame = index.frame
    report = InspectReport(
        path, format, len(index), len(index.patients), patient_ids_known=index.patient_ids_known
    )
    report.per_class = index.class_counts()
    report.per_split = {k: int(v) for k, v in frame["split"].value_counts().items() if k}
    report.problems = [{"file": str(f), "problem": p} for f, p in index.extra.get("problems", [])]
    sizes: Counter[str] = Counter()
    segmentation = index.has_masks
    pairs = list(zip(frame["image"], frame["mask"], strict=True))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (size, tumour, problems) in enumerate(pool.map(lambda p: _check_sample(*p), pairs)):
            if size:
                sizes[size] += 1
            report.n_with_mask += tumour is not None
            report.n_with_tumour += bool(tumour)
            report.problems.extend(problems)
            if segmentation and not pairs[i][1]:
                report.problems.append({"file": pairs[i][0], "problem": "image has no mask file"})
            if progress and (i + 1) % 64 == 0:
                progress(i + 1, len(pairs))
    report.image_sizes = dict(sizes.most_common())
    return report


def inspect_dataset(
    path: str | Path, format: str = "auto", progress: Callable[[int, int], None] | None = None
) -> InspectReport:
    """Detect, load and check the dataset at ``path``; structural errors become problems."""
    try:
        name = detect_format(path) if format == "auto" else format
        index = load_dataset(path, name)
    except DataError as exc:
        return InspectReport(str(path), format, problems=[{"file": exc.path, "problem": exc.problem}])
    return inspect_index(index, str(path), name, progress)
