"""From a config to cached arrays, splits and DataLoaders for one fold."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from braintumor.config import DataConfig, Preprocessing, TrainConfig
from braintumor.data.cache import ArrayStore, build_cache
from braintumor.data.dataset import (
    CachedDataset,
    check_volume_order,
    positions_for_patients,
    positions_for_samples,
)
from braintumor.data.index import SampleIndex
from braintumor.data.loaders import load_dataset
from braintumor.data.roi import coord_channels
from braintumor.data.splits import Splits, load_or_make_splits, make_splits
from braintumor.data.transforms import eval_transforms, train_transforms
from braintumor.io_utils import atomic_write_json
from braintumor.run_dir import RunDir


def preprocessing_of(cfg: DataConfig) -> Preprocessing:
    """The preprocessing part of a data config (saved with every model)."""
    return Preprocessing(
        cfg.image_size, cfg.channels, cfg.normalization, cfg.percentiles, cfg.roi_expansion, cfg.roi_coords,
        cfg.context_slices,
    )  # fmt: skip


def load_index(cfg: DataConfig, run_dir: Path) -> SampleIndex:
    """The configured dataset (less the copies of ``exclude_copies_of``), or seeded phantoms written
    into the run folder when no path is set."""
    if cfg.path:
        index = load_dataset(cfg.path, cfg.format)
        return without_copies(index, cfg, run_dir) if cfg.exclude_copies_of else index
    from braintumor.data.phantom import generate_phantoms, is_phantom_folder, load_phantoms

    folder = RunDir(run_dir).phantoms
    if is_phantom_folder(folder):
        return load_phantoms(folder)
    n_patients = max(cfg.phantom_count // 6, 8)
    return generate_phantoms(folder, n_patients=n_patients, slices_per_patient=6, size=cfg.phantom_size,
                             channels=max(cfg.channels, 1), seed=cfg.seed)  # fmt: skip


def copy_reference(cfg: DataConfig) -> tuple[SampleIndex, dict[str, object]]:
    """The images of ``cfg.exclude_copies_of`` whose copies must go: all of them, or with
    ``exclude_copies_fold = k`` the test patients of its fold ``k``; and how they were chosen."""
    reference = load_dataset(cfg.exclude_copies_of)
    if cfg.exclude_copies_fold < 0:
        return reference, {"reference_path": cfg.exclude_copies_of, "reference_fold": None}
    splits = make_splits(reference, cfg.folds, cfg.seed, cfg.val_fraction, split_method(reference))
    fold = splits.check_fold(cfg.exclude_copies_fold)
    test = splits.folds[fold]["test"]
    how = {
        "reference_path": cfg.exclude_copies_of,
        "reference_fold": fold,
        "reference_split": splits.method,
        "reference_test_groups": sorted(test),
    }
    return splits.subset(reference, fold, "test"), how


def without_copies(index: SampleIndex, cfg: DataConfig, run_dir: Path) -> SampleIndex:
    """``index`` less the copies of ``cfg.exclude_copies_of``'s images (see :func:`copy_reference`);
    the record (``excluded_copies.json``) is written once and reused by later loads of the same run
    folder (evaluation, resume) while it answers the same question."""
    from braintumor.data.dedup import drop_copies

    record_path = RunDir(run_dir).excluded_copies
    fold = None if cfg.exclude_copies_fold < 0 else cfg.exclude_copies_fold
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        same = (record.get("reference_path"), record.get("reference_fold"), record.get("n_before"))
        if same == (cfg.exclude_copies_of, fold, len(index)):
            gone = {d["sample_id"] for d in record["dropped"]}
            return index.subset(~index.frame["sample_id"].isin(gone))
    reference, how = copy_reference(cfg)
    kept, record = drop_copies(index, reference)
    atomic_write_json(record_path, {**how, **record})
    return kept


@dataclass
class FoldData:
    """Datasets of one fold and the arrays behind them."""

    index: SampleIndex
    store: ArrayStore
    splits: Splits
    fold: int
    train: CachedDataset
    val: CachedDataset
    test: CachedDataset

    @property
    def in_channels(self) -> int:
        """The model's input channels: image channels (+ 2 position channels with ``roi_coords``),
        times the slices stacked with ``context_slices``."""
        return self.train.channels

    @property
    def image_channels(self) -> int:
        """Channels of the decoded image alone (what ``data.channels`` records)."""
        return int(self.store.meta["channels"])  # type: ignore[call-overload]

    @property
    def coord_channels(self) -> int:
        """The ``roi_coords`` position channels after the image channels (0 or 2)."""
        return coord_channels(self.store.meta["preprocessing"])  # type: ignore[arg-type]


def positions(store: ArrayStore, splits: Splits, fold: int, part: str, masked: bool = False) -> list[int]:
    """Store positions of a fold's ``part``; ``masked``: only slices with a mask file (segmentation)."""
    ids = splits.folds[fold][part]
    found = (
        positions_for_patients(store, ids) if splits.unit == "patient" else positions_for_samples(store, ids)
    )
    return store.with_masks(found, part) if masked else found


def load_store(
    data: DataConfig, run_dir: Path, progress: Callable[[int, int], None] | None = None
) -> tuple[SampleIndex, ArrayStore]:
    """Load the dataset and its decode-once cache (checked for 2.5D input with ``context_slices``)."""
    index = load_index(data, run_dir)
    store = build_cache(index, preprocessing_of(data), data.cache_dir or None, progress=progress)
    if data.context_slices:
        check_volume_order(store, index.frame["slice"].to_numpy(), data.path or "<phantoms>")
    return index, store


def split_method(index: SampleIndex) -> str:
    """Kaggle-style Training/Testing folders keep their predefined split; others go patient-level."""
    has_test = bool((index.frame["split"] == "test").any())
    return "predefined" if has_test and not index.patient_ids_known else "auto"


def prepare_fold(
    data: DataConfig,
    train: TrainConfig,
    run_dir: Path,
    splits_path: Path,
    progress: Callable[[int, int], None] | None = None,
) -> FoldData:
    """Load, cache (decode once) and split the data; build the fold's datasets."""
    index, store = load_store(data, run_dir, progress)
    splits = load_or_make_splits(
        splits_path,
        index,
        data.folds,
        data.seed,
        data.val_fraction,
        split_method(index) if data.split == "auto" else data.split,
    )
    fold = splits.check_fold(data.fold)
    with_mask = train.task == "segment"
    if with_mask and store.masks is None:
        from braintumor.errors import DataError

        raise DataError(data.path or "<phantoms>", "segmentation needs masks; this dataset has none")
    n_coords = coord_channels(store.meta["preprocessing"])  # type: ignore[arg-type]
    aug = (
        train_transforms(
            with_mask,
            coord_channels=n_coords,
            gamma_prob=train.gamma_prob,
            bias_field_prob=train.bias_field_prob,
        )
        if train.augment
        else eval_transforms(with_mask)
    )
    k, plain = data.context_slices, eval_transforms(with_mask)
    return FoldData(
        index, store, splits, fold,
        CachedDataset(store, positions(store, splits, fold, "train", with_mask), aug, k),
        CachedDataset(store, positions(store, splits, fold, "val", with_mask), plain, k),
        CachedDataset(store, positions(store, splits, fold, "test", with_mask), plain, k),
    )  # fmt: skip


def train_loader(ds: CachedDataset, cfg: TrainConfig, workers: int) -> DataLoader[dict[str, object]]:
    """Shuffled loader; with ``tumour_fraction`` > 0, tumour slices make up that share of draws."""
    sampler = None
    if cfg.tumour_fraction > 0:
        tumour = ds.has_tumour()
        n_t, n = int(tumour.sum()), len(tumour)
        if 0 < n_t < n:
            weights = np.where(tumour, cfg.tumour_fraction / n_t, (1 - cfg.tumour_fraction) / (n - n_t))
            generator = torch.Generator().manual_seed(cfg.seed)
            sampler = WeightedRandomSampler(
                weights.tolist(), num_samples=n, replacement=True, generator=generator
            )
    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                      num_workers=workers, drop_last=len(ds) > cfg.batch_size,
                      persistent_workers=workers > 0)  # fmt: skip


def eval_loader(ds: CachedDataset, batch_size: int, workers: int = 0) -> DataLoader[dict[str, object]]:
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
