"""SampleIndex: one row per 2D sample; the narrow waist between loaders and everything else."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from braintumor.errors import DataError

COLUMNS = (
    "dataset",
    "sample_id",
    "patient_id",
    "label",
    "label_index",
    "image",
    "mask",
    "slice",
    "split",
)
NO_LABEL = ""


@dataclass(frozen=True)
class Sample:
    """One row of a SampleIndex.

    ``mask`` is empty when the sample has none; ``slice`` is -1 for single images; ``split`` is a
    split predefined by the dataset (``train``/``test``) or empty.
    """

    dataset: str
    sample_id: str
    patient_id: str
    label: str
    label_index: int
    image: str
    mask: str = ""
    slice: int = -1
    split: str = ""


@dataclass
class SampleIndex:
    """A table of samples with an ordered list of class names.

    Attributes:
        frame: DataFrame with exactly ``COLUMNS``.
        classes: class names; ``label_index`` indexes into it (-1 for unlabelled rows).
        patient_ids_known: False for datasets without patient ids (each image is its own patient).
        extra: loader-specific tables, e.g. the LGG ``data.csv`` clinical table.
    """

    frame: pd.DataFrame
    classes: list[str]
    patient_ids_known: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"SampleIndex frame lacks columns {missing}")
        self.frame = self.frame.loc[:, list(COLUMNS)].reset_index(drop=True)

    @classmethod
    def from_samples(
        cls,
        samples: Sequence[Sample],
        classes: Sequence[str],
        patient_ids_known: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> SampleIndex:
        """Build an index from Sample rows."""
        rows = [s.__dict__ for s in samples]
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        frame = frame.astype({"label_index": "int64", "slice": "int64"})
        return cls(frame, list(classes), patient_ids_known, dict(extra or {}))

    def __len__(self) -> int:
        return len(self.frame)

    def __iter__(self) -> Iterator[Sample]:
        for row in self.frame.itertuples(index=False):
            yield Sample(**row._asdict())

    def __getitem__(self, i: int) -> Sample:
        return Sample(**self.frame.iloc[i].to_dict())

    @property
    def datasets(self) -> list[str]:
        return sorted(self.frame["dataset"].unique())

    @property
    def patients(self) -> list[str]:
        return sorted(self.frame["patient_id"].unique())

    @property
    def has_masks(self) -> bool:
        return bool((self.frame["mask"] != "").any())

    def subset(self, rows: Sequence[int] | pd.Series) -> SampleIndex:
        """A new index with the given row positions (or boolean mask)."""
        frame = self.frame[rows] if isinstance(rows, pd.Series) else self.frame.iloc[list(rows)]
        return SampleIndex(frame.copy(), list(self.classes), self.patient_ids_known, self.extra)

    def for_patients(self, patient_ids: Sequence[str]) -> SampleIndex:
        """Rows of the given patients."""
        return self.subset(self.frame["patient_id"].isin(set(patient_ids)))

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class name, in class order."""
        counts = self.frame["label"].value_counts()
        return {c: int(counts.get(c, 0)) for c in self.classes}

    def save(self, path: str | Path) -> None:
        """Save as CSV (paths relative to the file's folder) or Parquet (by suffix), atomically; the
        classes, whether patient ids are known and any official folds go to ``<name>.classes.json``
        (other ``extra`` tables, such as LGG's clinical table, are not saved)."""
        from braintumor.io_utils import atomic_write, atomic_write_json

        path = Path(path)
        frame = self.frame.copy()
        base = path.parent.resolve()
        for col in ("image", "mask"):
            frame[col] = [_relative(p, base) for p in frame[col]]
        if path.suffix == ".parquet":
            atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        else:
            atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
        meta: dict[str, Any] = {"classes": self.classes, "patient_ids_known": self.patient_ids_known}
        for key in ("official_folds", "sites"):
            if key in self.extra:
                meta[key] = self.extra[key]
        atomic_write_json(path.with_suffix(".classes.json"), meta)

    @classmethod
    def load(cls, path: str | Path) -> SampleIndex:
        """Read an index written by :meth:`save`."""
        import json

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "sample index file not found")
        try:
            if path.suffix == ".parquet":
                frame = pd.read_parquet(path)
            else:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # pandas raises many types for a broken table
            raise DataError(path, f"cannot read the sample index ({exc})") from None
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; expected {list(COLUMNS)}")
        frame = frame.astype({"label_index": "int64", "slice": "int64"})
        base = path.parent.resolve()
        for col in ("image", "mask"):
            frame[col] = [str(base / p) if p and not os.path.isabs(p) else p for p in frame[col]]
        meta_path = path.with_suffix(".classes.json")
        extra: dict[str, Any] = {}
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            classes, known = list(meta["classes"]), bool(meta["patient_ids_known"])
            if "official_folds" in meta:
                extra["official_folds"] = {str(k): int(v) for k, v in meta["official_folds"].items()}
            if "sites" in meta:
                extra["sites"] = {str(k): str(v) for k, v in meta["sites"].items()}
        else:
            order = frame.drop_duplicates("label").sort_values("label_index")
            classes, known = [c for c in order["label"] if c], True
        return cls(frame, classes, known, extra)


def _relative(p: str, base: Path) -> str:
    if not p:
        return p
    try:
        return os.path.relpath(p, base)
    except ValueError:  # different drive on Windows
        return p
