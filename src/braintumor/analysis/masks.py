"""Per-patient mask stacks: the dataset's ground truth, or a folder of predicted mask PNGs.

Predicted masks are files named ``<sample_id>_mask.png`` (what ``braintumor predict`` and
``braintumor analyze`` write), anywhere under the folder. A sample id is mapped to its patient and
slice through the dataset's index when the dataset's slices are present, else through the LGG
naming rule ``<TCGA_XX_XXXX>_<YYYYMMDD>_<slice>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from braintumor.data.lgg import find_root, load_lgg, patient_id
from braintumor.data.readers import read_mask
from braintumor.errors import DataError

Progress = Callable[[int, int], None]
MASK_SUFFIX = "_mask.png"
_LGG_SAMPLE = re.compile(r"^(?P<folder>TCGA_[A-Z0-9]{2}_[A-Z0-9]{4}_\d{8})_(?P<n>\d+)$")


@dataclass
class PatientMasks:
    """One patient's mask files in slice order."""

    patient_id: str
    slices: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def read(self) -> list[np.ndarray]:
        """The masks as uint8 {0,1} H×W arrays."""
        return [read_mask(p) for p in self.paths]


def _sorted(groups: dict[str, PatientMasks]) -> list[PatientMasks]:
    for group in groups.values():
        order = np.argsort(group.slices, kind="stable")
        group.slices = [group.slices[i] for i in order]
        group.paths = [group.paths[i] for i in order]
    return [groups[k] for k in sorted(groups)]


def ground_truth_masks(data: str | Path) -> list[PatientMasks]:
    """The LGG dataset's own masks, per patient (slices without a mask file are left out).

    Raises:
        DataError: ``data`` is not an LGG ``kaggle_3m`` folder, or it holds no mask file.
    """
    index = load_lgg(data)
    groups: dict[str, PatientMasks] = {}
    for row in index.frame.itertuples(index=False):
        if row.mask:
            group = groups.setdefault(str(row.patient_id), PatientMasks(str(row.patient_id)))
            group.slices.append(int(row.slice))
            group.paths.append(str(row.mask))
    if not groups:
        raise DataError(data, "no <patient>_<n>_mask.tif files found; the LGG masks are needed")
    return _sorted(groups)


def _index_lookup(data: str | Path | None) -> dict[str, tuple[str, int]]:
    if data is None or find_root(data) is None:
        return {}
    frame = load_lgg(data).frame
    columns = zip(frame["sample_id"], frame["patient_id"], frame["slice"], strict=True)
    return {str(s): (str(p), int(n)) for s, p, n in columns}


def predicted_masks(folder: str | Path, data: str | Path | None = None) -> list[PatientMasks]:
    """``<sample_id>_mask.png`` files under ``folder``, grouped per patient.

    Args:
        folder: a folder of predicted masks (searched recursively).
        data: the dataset folder; its index maps sample ids to patients and slices.

    Raises:
        DataError: no mask file, a sample id that names no known slice, or one sample twice.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "mask folder not found; give a folder of <sample_id>_mask.png files")
    lookup = _index_lookup(data)
    groups: dict[str, PatientMasks] = {}
    seen: dict[str, Path] = {}
    for path in sorted(folder.rglob(f"*{MASK_SUFFIX}")):
        sample_id = path.name[: -len(MASK_SUFFIX)]
        if sample_id in seen:
            raise DataError(path, f"sample {sample_id} has a second mask (first: {seen[sample_id]})")
        seen[sample_id] = path
        pid, number = _locate(sample_id, lookup, path)
        group = groups.setdefault(pid, PatientMasks(pid))
        group.slices.append(number)
        group.paths.append(str(path))
    if not groups:
        raise DataError(folder, f"no *{MASK_SUFFIX} files found; write them with `braintumor predict`")
    return _sorted(groups)


def _locate(sample_id: str, lookup: dict[str, tuple[str, int]], path: Path) -> tuple[str, int]:
    if sample_id in lookup:
        return lookup[sample_id]
    match = _LGG_SAMPLE.match(sample_id)
    if match is None:
        raise DataError(
            path,
            f"cannot tell the patient of sample {sample_id!r}: it is not in the dataset index and "
            "not named <TCGA_XX_XXXX>_<YYYYMMDD>_<slice>; name masks <sample_id>_mask.png",
        )
    return patient_id(match.group("folder")), int(match.group("n"))


def iter_stacks(
    patients: list[PatientMasks], progress: Progress | None = None
) -> Iterator[tuple[PatientMasks, list[np.ndarray]]]:
    """Read each patient's masks in turn, calling ``progress(done, total)`` per patient."""
    for i, patient in enumerate(patients):
        yield patient, patient.read()
        if progress is not None:
            progress(i + 1, len(patients))
