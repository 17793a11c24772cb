"""Random forests as safetensors + JSON: the numpy predictor equals scikit-learn; bad files are refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load, save
from sklearn.ensemble import RandomForestClassifier

from braintumor.bundle.forest import RegionForest, load_forest
from braintumor.bundle.store import BundleError

FEATURES = [f"f{i}" for i in range(5)]


def _fitted(labels: tuple[int, ...], seed: int = 0) -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, len(FEATURES)))
    y = np.asarray(labels)[(x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)]
    forest = RandomForestClassifier(n_estimators=25, min_samples_leaf=2, random_state=seed).fit(x, y)
    return forest, x


def _round_trip(forest: RandomForestClassifier, classes: list[str]) -> RegionForest:
    data, meta = RegionForest.from_sklearn(forest, FEATURES, classes).to_files()
    return load_forest(data, meta, "B/forest.safetensors", "B/forest.json")


@pytest.mark.parametrize("labels", [(0, 1, 2), (0, 2, 3)], ids=["all-classes", "class-1-absent"])
def test_predictions_equal_sklearn(labels: tuple[int, ...]) -> None:
    forest, x = _fitted(labels)
    classes = ["a", "b", "c", "d"]
    loaded = _round_trip(forest, classes)
    assert loaded.n_trees == 25 and loaded.classes == tuple(classes)
    new = np.random.default_rng(1).normal(size=(300, len(FEATURES))) * 2
    for data in (x, new):  # the training points sit next to the thresholds
        expected = np.zeros((len(data), 4))
        expected[:, forest.classes_] = forest.predict_proba(data)
        got = loaded.predict_proba(data)
        assert got.shape == (len(data), 4)
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert np.all(loaded.predict_proba(new)[:, [c for c in range(4) if c not in labels]] == 0)


def test_string_labels_map_by_name() -> None:
    forest, x = _fitted((0, 1, 2))
    names = np.array(["x", "z", "y"])[forest.predict(x)]
    named = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, names)
    loaded = _round_trip(named, ["y", "x", "z"])
    expected = named.predict_proba(x)[:, [1, 0, 2]]  # sklearn's columns are sorted: x, y, z
    np.testing.assert_allclose(loaded.predict_proba(x), expected, atol=1e-6, rtol=0)


def test_wrong_feature_count_is_refused() -> None:
    loaded = _round_trip(_fitted((0, 1, 2))[0], ["a", "b", "c"])
    with pytest.raises(ValueError, match="expected N×5"):
        loaded.predict_proba(np.zeros((2, 4)))


def _files() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    data, meta = RegionForest.from_sklearn(_fitted((0, 1, 2))[0], FEATURES, ["a", "b", "c"]).to_files()
    return dict(load(data)), meta


def _breaks(arrays: dict[str, np.ndarray], meta: dict[str, Any], match: str, where: str) -> None:
    with pytest.raises(BundleError, match=match) as info:
        load_forest(save(arrays), meta, "B/forest.safetensors", "B/forest.json")
    assert where in str(info.value)


def test_malformed_forests_name_the_file() -> None:
    with pytest.raises(BundleError, match=r"B/forest\.safetensors: not a readable safetensors"):
        load_forest(b"not a forest", _files()[1], "B/forest.safetensors", "B/forest.json")
    arrays, meta = _files()
    inner = int(np.flatnonzero(arrays["children_left"] >= 0)[0])
    cases: list[tuple[str, Any, str]] = [
        ("children_left", lambda a: a.__setitem__(inner, len(a) + 5), "out of its tree"),
        ("children_right", lambda a: a.__setitem__(inner, inner), "not after its parent"),
        ("children_right", lambda a: a.__setitem__(inner, -1), "one child"),
        ("feature", lambda a: a.__setitem__(inner, len(FEATURES)), "feature index"),
        ("value", lambda a: a.__setitem__((0, 0), np.nan), "not finite"),
        ("tree_offsets", lambda a: a.__setitem__(-1, a[-1] + 1), "tree_offsets"),
    ]
    for key, damage, match in cases:
        broken = {k: v.copy() for k, v in arrays.items()}
        damage(broken[key])
        _breaks(broken, meta, match, "B/forest.safetensors")
    _breaks(
        {**arrays, "threshold": arrays["threshold"].astype(np.float64)}, meta, "float64", "forest.safetensors"
    )
    _breaks({k: v for k, v in arrays.items() if k != "value"}, meta, "expected", "forest.safetensors")
    _breaks(arrays, {**meta, "classes": ["a", "b"]}, r"value has shape", "forest.safetensors")
    _breaks(arrays, {**meta, "features": FEATURES[:4]}, "feature index|value", "forest.safetensors")
    _breaks(arrays, {**meta, "n_trees": 3}, "n_trees=3", "B/forest.json")
    _breaks(arrays, {**meta, "format": "pickle"}, "format", "B/forest.json")
