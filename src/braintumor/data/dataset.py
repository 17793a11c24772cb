"""A torch Dataset over an ArrayStore, following the sample contract of the design doc."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from braintumor.data.cache import ArrayStore
from braintumor.data.preprocess import context_positions, with_context


class CachedDataset(Dataset[dict[str, Any]]):
    """Samples ``{"image": float32 C×H×W, "mask": uint8 1×H×W (if any), "label": int,
    "sample_id": str, "patient_id": str}`` read from memory-mapped arrays.

    Args:
        store: the decoded arrays.
        positions: store positions to expose (default: all).
        transform: callable applied to each sample dict (e.g. MONAI dictionary transforms).
        context: 2.5D: stack each slice with its ``context`` neighbours on either side (same
            patient; the store holds a patient's slices consecutive and in slice order), giving
            (2·context + 1)·C channels (:func:`~braintumor.data.preprocess.with_context`).
    """

    def __init__(
        self,
        store: ArrayStore,
        positions: Sequence[int] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        context: int = 0,
    ) -> None:
        self.store = store
        self.positions = np.arange(len(store)) if positions is None else np.asarray(positions)
        self.transform = transform
        self.context = context
        self._stacks = context_positions(store.patient_ids, context) if context else None

    @property
    def channels(self) -> int:
        """Input channels of a sample: the store's, times the slices stacked with ``context``."""
        return int(self.store.images.shape[1]) * (2 * self.context + 1)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = int(self.positions[i])
        if self._stacks is None:
            image = np.asarray(self.store.images[p], dtype=np.float32)
        else:
            image = with_context(self.store.images, self._stacks[p : p + 1])[0].astype(np.float32)
        sample: dict[str, Any] = {
            "image": torch.from_numpy(image),
            "label": int(self.store.labels[p]),
            "sample_id": self.store.sample_ids[p],
            "patient_id": self.store.patient_ids[p],
        }
        if self.store.masks is not None:
            sample["mask"] = torch.from_numpy(np.array(self.store.masks[p]))
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def has_tumour(self) -> np.ndarray:
        """Boolean per exposed sample: does its mask contain tumour?"""
        if self.store.masks is None:
            return np.zeros(len(self), dtype=bool)
        masks = self.store.masks[self.positions]
        return np.asarray(masks.reshape(len(self), -1).any(axis=1))


def positions_for_patients(store: ArrayStore, patient_ids: Sequence[str]) -> list[int]:
    """Store positions of the given patients' samples."""
    wanted = set(patient_ids)
    return [i for i, p in enumerate(store.patient_ids) if p in wanted]


def positions_for_samples(store: ArrayStore, sample_ids: Sequence[str]) -> list[int]:
    """Store positions of the given sample ids."""
    wanted = set(sample_ids)
    return [i for i, s in enumerate(store.sample_ids) if s in wanted]


def check_volume_order(store: ArrayStore, slices: np.ndarray, source: str) -> None:
    """2.5D input needs each patient's slices consecutive in the store, in slice order, without a
    gap (a missing slice would make its neighbours' neighbours stand in for it).

    Args:
        slices: the index's ``slice`` number of every index row (``store.rows`` picks them).
        source: the dataset, for the error.

    Raises:
        DataError: a patient of single images (slice -1), slices out of order, or a missing slice.
    """
    from braintumor.errors import DataError

    numbers = np.asarray(slices)[store.rows]
    seen: set[str] = set()
    for i, pid in enumerate(store.patient_ids):
        first = i == 0 or store.patient_ids[i - 1] != pid
        if numbers[i] < 0 or (first and pid in seen) or (not first and numbers[i] <= numbers[i - 1]):
            raise DataError(
                source,
                f"data.context_slices stacks neighbouring slices of a volume, but patient {pid} "
                f"({store.sample_ids[i]}) has no ordered slice series: a 2.5D model reads patient "
                "folders of numbered slices (the LGG layout); train on other data with "
                "data.context_slices=0",
            )
        if not first and numbers[i] != numbers[i - 1] + 1:
            raise DataError(
                source,
                f"data.context_slices stacks neighbouring slices, but patient {pid} has no slice "
                f"{int(numbers[i - 1]) + 1} between {store.sample_ids[i - 1]} and {store.sample_ids[i]}",
            )
        seen.add(pid)
