"""A torch Dataset over an ArrayStore, following the sample contract of the design doc."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from braintumor.data.cache import ArrayStore


class CachedDataset(Dataset[dict[str, Any]]):
    """Samples ``{"image": float32 C×H×W, "mask": uint8 1×H×W (if any), "label": int,
    "sample_id": str, "patient_id": str}`` read from memory-mapped arrays.

    Args:
        store: the decoded arrays.
        positions: store positions to expose (default: all).
        transform: callable applied to each sample dict (e.g. MONAI dictionary transforms).
    """

    def __init__(
        self,
        store: ArrayStore,
        positions: Sequence[int] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.positions = np.arange(len(store)) if positions is None else np.asarray(positions)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        p = int(self.positions[i])
        sample: dict[str, Any] = {
            "image": torch.from_numpy(np.asarray(self.store.images[p], dtype=np.float32)),
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
