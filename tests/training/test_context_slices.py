"""2.5D input (``data.context_slices``): neighbour tables, the dataset, the augmentation, the model
card, and one preparation for training and analysis."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import load_bundle
from braintumor.config import ConfigError, DataConfig, Preprocessing, load_config
from braintumor.data.cache import ArrayStore, build_cache
from braintumor.data.dataset import CachedDataset, check_volume_order, positions_for_patients
from braintumor.data.index import SampleIndex
from braintumor.data.phantom import generate_phantoms
from braintumor.data.preprocess import context_positions, volume_with_context, with_context
from braintumor.errors import DataError
from braintumor.inference.prepare import prepare_scan
from braintumor.inference.sources import expand_inputs, read_scan
from braintumor.models.card import ModelCard, ModelCardError
from braintumor.run_dir import RunDir
from braintumor.training.augment import replace_missing_modalities
from braintumor.training.data import load_store, preprocessing_of
from braintumor.training.runner import train_fold

Store = tuple[SampleIndex, ArrayStore]
PREP = Preprocessing(image_size=32, normalization="percentile-image")


def test_neighbours_stay_in_their_volume_and_repeat_at_its_ends() -> None:
    table = context_positions(["a", "a", "a", "b", "c", "c"], 1)
    assert table.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 3], [4, 4, 5], [4, 5, 5]]
    assert context_positions(["a"] * 4, 2)[0].tolist() == [0, 0, 0, 1, 2]
    assert context_positions(["a", "b"], 0).tolist() == [[0], [1]]


def test_stacked_channels_run_lowest_slice_first() -> None:
    images = np.arange(4 * 2, dtype=np.float32).reshape(4, 2, 1, 1)  # 4 slices × 2 channels
    stacked = with_context(images, context_positions(["v"] * 4, 1))
    assert stacked.shape == (4, 6, 1, 1)
    assert stacked[1, :, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert stacked[0, :, 0, 0].tolist() == [0, 1, 0, 1, 2, 3]
    single = volume_with_context(images[:1], 1)
    assert single[0, :, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]  # one image: copies of itself
    assert volume_with_context(images, 0) is images


@pytest.fixture(scope="module")
def phantom_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("context")
    index = generate_phantoms(root / "phantoms", n_patients=3, slices_per_patient=4, size=32)
    return index, build_cache(index, PREP, root / "cache")


def test_dataset_stacks_the_patients_neighbours(phantom_store: Store) -> None:
    index, store = phantom_store
    flat, stacked = CachedDataset(store), CachedDataset(store, context=1)
    assert stacked.channels == 3 * flat.channels == 3
    images = [flat[i]["image"] for i in range(len(store))]
    middle = stacked[5]["image"]  # patient 1, slice 2
    assert torch.equal(middle, torch.cat(images[4:7]))
    first = stacked[4]["image"]  # patient 1's first slice: never patient 0's last
    assert torch.equal(first, torch.cat([images[4], images[4], images[5]]))
    check_volume_order(store, index.frame["slice"].to_numpy(), "phantoms")


def test_single_images_and_gaps_are_refused(phantom_store: Store) -> None:
    index, store = phantom_store
    slices = index.frame["slice"].to_numpy().copy()
    slices[2] = -1
    with pytest.raises(DataError, match=r"context_slices.*PH0000_3"):
        check_volume_order(store, slices, "kaggle")
    slices = index.frame["slice"].to_numpy()[::-1].copy()
    with pytest.raises(DataError, match="no ordered slice series"):
        check_volume_order(store, slices, "kaggle")
    slices = index.frame["slice"].to_numpy().copy()
    slices[store.rows[1] :] += 1  # the first patient's second slice is missing
    with pytest.raises(DataError, match="PH0000 has no slice 2 between"):
        check_volume_order(store, slices, "lgg")


def test_config_and_records() -> None:
    with pytest.raises(ConfigError, match="context_slices"):
        DataConfig(context_slices=1, roi_expansion=1.5)
    with pytest.raises(ConfigError, match="context_slices"):
        DataConfig(context_slices=9)
    prep = preprocessing_of(DataConfig(context_slices=2))
    assert prep.context_slices == 2 and prep.stacked_slices == 5
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    old = {k: v for k, v in prep.to_dict().items() if k != "context_slices"}
    assert Preprocessing.from_dict(old).context_slices == 0  # records written before the option


def test_card_splits_channels_among_slices() -> None:
    record = {
        "task": "segment",
        "model": {"name": "unet", "out_channels": 1, "kwargs": {"init_features": 4}},
        "in_channels": 9,
        "preprocessing": {**PREP.to_dict(), "context_slices": 1},
    }
    card = ModelCard.from_dict(record, "best.json")
    assert card.image_channels == 3
    with pytest.raises(ModelCardError, match="does not split into 3 stacked slices"):
        ModelCard.from_dict({**record, "in_channels": 8}, "best.json")
    with pytest.raises(ModelCardError, match="context_slices"):
        ModelCard.from_dict(
            {**record, "preprocessing": {**record["preprocessing"], "context_slices": -1}}, "x"
        )


def test_a_missing_sequence_is_missing_in_every_stacked_slice() -> None:
    b, slices, c = 64, 3, 3
    image = torch.arange(c, dtype=torch.float32).repeat(slices)[None, :, None, None].repeat(b, 1, 2, 2)
    image = image + 10 * torch.arange(slices).repeat_interleave(c)[None, :, None, None]  # slice offset
    out = replace_missing_modalities(image, 1, 0.5, torch.Generator().manual_seed(0), slices=slices)
    per_slice = out.reshape(b, slices, c, 2, 2)[:, :, :, 0, 0] - 10 * torch.arange(slices)[None, :, None]
    assert torch.equal(per_slice[:, 0], per_slice[:, 1]) and torch.equal(per_slice[:, 0], per_slice[:, 2])
    replaced = per_slice[:, 0] == 1  # FLAIR's value in a channel that is not FLAIR
    assert replaced[:, [0, 2]].any() and not replaced[:, [0, 2]].all()
    with pytest.raises(ValueError, match="reference channel 3"):
        replace_missing_modalities(image, 3, 0.5, slices=slices)


def test_training_and_analysis_prepare_the_same_input(tmp_path: Path) -> None:
    """A 2.5D run trains, records its input, and a bundle made from it stacks a slice series as the
    run's dataset did (up to the cache's float16), for every model that reads whole slices."""
    run = tmp_path / "run"
    tiny = [
        "data.phantom_count=36", "data.phantom_size=32", "data.image_size=32", "data.folds=3",
        "data.normalization=percentile-image", "train.batch_size=8", "train.precision=32-true",
        "train.epochs=1", "model.name=unet", "model.kwargs={init_features: 4}", "data.context_slices=1",
        f"data.cache_dir={tmp_path / 'cache'}", "train.missing_modality_prob=0.5",
    ]  # fmt: skip
    cfg = load_config(None, tiny)
    metrics = train_fold(cfg, run, trainer_overrides={"enable_progress_bar": False})
    assert metrics["dice_per_patient_mean"] >= 0
    card = load_bundle(create_bundle(run, None, tmp_path / "bundle")).models["seg"]
    assert card.in_channels == 3 and card.image_channels == 1 and card.prep.context_slices == 1
    folder = tmp_path / "PH0000"
    folder.mkdir()
    images = RunDir(run).phantoms / "images"
    n = len(list(images.glob("PH0000_*.png")))
    for j in range(1, n + 1):
        shutil.copy(images / f"PH0000_{j}.png", folder / f"PH0000_{j}.png")
    (item,) = expand_inputs([folder])
    bundle = load_bundle(tmp_path / "bundle")
    inputs = prepare_scan(read_scan(item), bundle).seg
    assert inputs is not None and len(inputs) == n
    seg = inputs.stacked()  # one slice at a time in analyze
    assert np.array_equal(inputs[n // 2], seg[n // 2])
    _, store = load_store(cfg.data, run)
    dataset = CachedDataset(store, positions_for_patients(store, ["PH0000"]), context=1)
    expected = np.stack([dataset[i]["image"].numpy() for i in range(len(dataset))])
    assert seg.shape == expected.shape == (n, 3, 32, 32)
    assert np.abs(seg - expected).max() < 1e-2
    # a model that reads whole slices in another role (the gate) gets the same stacked input
    as_gate = replace(bundle.models["seg"], role="gate")
    gated = prepare_scan(read_scan(item), replace(bundle, models={**bundle.models, "gate": as_gate}))
    assert np.array_equal(gated.whole_slice["gate"].stacked(), seg)
