"""Decode-once cache: contents, reuse, invalidation, ROI crops and the torch Dataset view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.config import Preprocessing
from braintumor.data.cache import build_cache, cache_key
from braintumor.data.dataset import CachedDataset, positions_for_patients
from braintumor.data.index import Sample, SampleIndex
from braintumor.data.preprocess import normalize_images, normalize_with_percentiles, resize_square
from braintumor.data.transforms import eval_transforms, train_transforms


def tiny_index(root: Path, n: int = 4, size: int = 40) -> SampleIndex:
    samples = []
    for i in range(n):
        image = np.full((size, size), 20 * i + 10, np.uint8)
        image[5:15, 8:30] = 200
        mask = np.zeros((size, size), np.uint8)
        if i % 2 == 0:
            mask[5:15, 8:30] = 255
        Image.fromarray(image).save(root / f"{i}.png")
        Image.fromarray(mask).save(root / f"{i}_mask.png")
        samples.append(
            Sample(
                "t",
                f"s{i}",
                f"p{i // 2}",
                "a",
                0,
                str(root / f"{i}.png"),
                str(root / f"{i}_mask.png"),
            )
        )
    return SampleIndex.from_samples(samples, ["a"])


def test_cache_contents_and_reuse(tmp_path: Path) -> None:
    index = tiny_index(tmp_path)
    prep = Preprocessing(image_size=32, normalization="minmax-image")
    store = build_cache(index, prep, tmp_path / "cache")
    assert store.images.shape == (4, 1, 32, 32) and store.images.dtype == np.float16
    assert store.masks is not None and store.masks.shape == (4, 1, 32, 32)
    assert set(np.unique(store.masks)) == {0, 1}
    assert float(store.images.max()) == 1.0 and float(store.images.min()) == 0.0
    again = build_cache(index, prep, tmp_path / "cache")
    assert again.path == store.path  # reused, not rebuilt
    other = build_cache(index, Preprocessing(image_size=16), tmp_path / "cache")
    assert other.path != store.path and other.images.shape[-1] == 16
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "0.png")  # file changed -> new key
    assert build_cache(index, prep, tmp_path / "cache").path != store.path


def test_roi_cache_drops_empty_masks(tmp_path: Path) -> None:
    index = tiny_index(tmp_path)
    store = build_cache(index, Preprocessing(image_size=24, roi_expansion=1.0), tmp_path / "c")
    assert store.sample_ids == ["s0", "s2"]
    # a tight 10x22 box is all tumour; padded to a square, 10/22 of it remains
    assert store.masks is not None and abs(store.masks[:, 0].mean() - 10 / 22) < 0.05


def test_roi_coords_store(tmp_path: Path) -> None:
    index = tiny_index(tmp_path)
    plain = build_cache(index, Preprocessing(image_size=24, roi_expansion=1.0), tmp_path / "c")
    store = build_cache(
        index, Preprocessing(image_size=24, roi_expansion=1.0, roi_coords=True), tmp_path / "c"
    )
    assert store.path != plain.path and store.images.shape == (2, 3, 24, 24) and store.meta["channels"] == 1
    assert np.array_equal(store.images[:, :1], plain.images) and -1 <= store.images[:, 1:].mean() <= 1
    assert cache_key(index, _PreOption(image_size=24)) == cache_key(index, Preprocessing(image_size=24))


class _PreOption(Preprocessing):
    """Preprocessing as recorded before ``roi_coords`` existed."""

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in super().to_dict().items() if k != "roi_coords"}


def test_dataset_contract_and_transforms(tmp_path: Path) -> None:
    store = build_cache(tiny_index(tmp_path), Preprocessing(image_size=32), tmp_path / "c")
    ds = CachedDataset(store, positions_for_patients(store, ["p1"]), eval_transforms(True))
    sample = ds[0]
    assert sample["image"].dtype.is_floating_point and tuple(sample["image"].shape) == (1, 32, 32)
    assert tuple(sample["mask"].shape) == (1, 32, 32)
    assert (sample["sample_id"], sample["patient_id"], sample["label"]) == ("s2", "p1", 0)
    augmented = CachedDataset(store, None, train_transforms(True))[0]
    assert set(np.unique(augmented["mask"].numpy())) <= {0, 1}
    assert list(ds.has_tumour()) == [True, False]


def test_volume_vs_image_normalisation() -> None:
    a = np.full((1, 4, 4), 10, np.float32)
    b = np.full((1, 4, 4), 110, np.float32)
    b[0, 0, 0] = 0
    vol = normalize_images([a, b], "percentile-volume", (0.0, 100.0))
    img = normalize_images([a, b], "percentile-image", (0.0, 100.0))
    assert vol[0].max() == pytest.approx(10 / 110) and vol[1].max() == 1.0
    assert img[0].max() == 0.0 and img[1].max() == 1.0


def test_zscore_volume_standardises_the_non_zero_voxels_and_keeps_background() -> None:
    rng = np.random.default_rng(0)
    images = [rng.gamma(2.0, 30.0, (2, 16, 16)).astype(np.float32) + 1 for _ in range(3)]
    for im in images:
        im[:, :4] = 0  # background rows
    images[2][1] *= 5  # a brighter slice in channel 1 moves the volume's statistics, not its own
    vol = normalize_images(images, "zscore-volume")
    for c in range(2):
        inside = np.concatenate([v[c][im[c] != 0] for v, im in zip(vol, images, strict=True)])
        assert inside.mean() == pytest.approx(0.0, abs=1e-5) and inside.std() == pytest.approx(1.0, abs=1e-4)
    assert all((v[:, :4] == 0).all() for v in vol)
    assert vol[2][1][4:].mean() > vol[0][1][4:].mean() + 0.5
    single = normalize_images([images[2]], "zscore-nonzero-image")[0]
    assert single[1][4:].mean() == pytest.approx(0.0, abs=1e-5)
    prep = Preprocessing(16, 0, "zscore-volume", (10.0, 99.0))
    assert prep.method_for(volume=True) == "zscore-volume"
    assert prep.method_for(volume=False) == "zscore-nonzero-image"


def test_resize_square_pads_non_square_and_keeps_mask_aligned() -> None:
    image = np.zeros((1, 20, 40), np.float32)
    mask = np.zeros((20, 40), np.uint8)
    image[0, :, :20], mask[:, :20] = 1.0, 1
    out, out_mask = resize_square(image, 20, mask)
    assert out.shape == (1, 20, 20) and out_mask is not None
    assert out_mask[:5].sum() == 0 and out_mask[10, :10].all() and not out_mask[10, 10:].any()


@pytest.mark.parametrize(
    "method",
    ["percentile-image", "percentile-volume", "zscore-image", "zscore-volume", "zscore-nonzero-image"],
)
def test_normalize_with_percentiles_equals_one_call_per_pair(method: str) -> None:
    rng = np.random.default_rng(0)
    images = [rng.gamma(2.0, 30.0, (3, 20, 24)).astype(np.float32) for _ in range(4)]
    pairs = [(0.5, 99.5), (1.0, 99.5), (10.0, 99.0)]
    shared = normalize_with_percentiles(images, method, pairs)
    for pair, got in zip(pairs, shared, strict=True):
        for a, b in zip(got, normalize_images(images, method, pair), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float", "constant", "single"])
def test_histogram_percentiles_equal_numpy(kind: str) -> None:
    from braintumor.data.preprocess import percentiles_of

    rng = np.random.default_rng(1)
    values = {
        "uint8": rng.integers(0, 256, 5000).astype(np.float32),
        "uint16": rng.integers(0, 4096, 777).astype(np.float32),
        "float": rng.gamma(2.0, 30.0, 5000).astype(np.float32),
        "constant": np.full(100, 7.0, np.float32),
        "single": np.array([3.0], np.float32),
    }[kind]
    qs = [0.0, 0.5, 1.0, 10.0, 50.0, 99.0, 99.5, 100.0]
    np.testing.assert_allclose(percentiles_of(values, qs), np.percentile(values, qs), rtol=1e-6, atol=1e-4)
