"""A fitted random forest as plain arrays (safetensors + JSON), and a numpy predictor for it.

A bundle fusing its ROI classifier with a region-feature forest (see
:mod:`braintumor.experiments.fusion`) stores the forest as ``forest.safetensors`` + ``forest.json``,
never as a pickle. The trees are concatenated; per node (``n_nodes`` in all)::

    children_left, children_right   int32, global node indices (-1 at leaves); a child always
                                    comes after its parent within the same tree
    feature                         int32, the feature tested (-1 at leaves)
    threshold                       float32: go left when x <= threshold
    value                           float32 n_nodes×K, class fractions of the node's training slices
    tree_offsets                    int32 n_trees+1, the first node of each tree (and the end)

scikit-learn compares float32 features with float64 thresholds; each threshold is stored as the
largest float32 not above it, so the float32 comparison takes the same branch. Predictions are the
mean over trees of the leaf's class fractions, as ``RandomForestClassifier.predict_proba``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from braintumor.bundle.store import BundleError, BundleReader

FOREST_WEIGHTS = "forest.safetensors"
FOREST_META = "forest.json"
FOREST_FORMAT = "braintumor-forest"
_ARRAYS = ("children_left", "children_right", "feature", "threshold", "value", "tree_offsets")


@dataclass(frozen=True)
class RegionForest:
    """A random forest's trees as arrays (see the module doc); ``classes`` name the K columns."""

    features: tuple[str, ...]
    classes: tuple[str, ...]
    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    tree_offsets: np.ndarray

    @property
    def n_trees(self) -> int:
        return len(self.tree_offsets) - 1

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """N×K mean over trees of the leaf's class fractions for N×F features (F = ``features``)."""
        x = np.asarray(x, dtype=np.float32)  # as scikit-learn: float32 features
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"x has shape {x.shape}; expected N×{len(self.features)} ({self.features})")
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.tree_offsets[:-1], (len(x), self.n_trees)).copy()  # N×T roots
        while True:
            inner = self.children_left[node] >= 0
            if not inner.any():
                break
            left = x[rows, np.maximum(self.feature[node], 0)] <= self.threshold[node]
            child = np.where(left, self.children_left[node], self.children_right[node])
            node = np.where(inner, child, node)
        return self.value[node].astype(np.float64).mean(axis=1)

    @classmethod
    def from_sklearn(cls, forest: Any, features: list[str], classes: list[str]) -> RegionForest:
        """Arrays of a fitted ``RandomForestClassifier`` whose ``classes_`` are indices into
        ``classes`` or names among them (classes it never saw get zero probability)."""
        columns = [int(c) if isinstance(c, int | np.integer) else classes.index(str(c))
                   for c in forest.classes_]  # fmt: skip
        if int(forest.n_features_in_) != len(features):
            raise ValueError(f"the forest takes {forest.n_features_in_} features, not {len(features)}")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _ARRAYS[:-1]}
        offsets = [0]
        for est in forest.estimators_:
            tree, start = est.tree_, offsets[-1]
            leaf = tree.children_left < 0
            for key in ("children_left", "children_right"):
                parts[key].append(np.where(leaf, -1, getattr(tree, key) + start))
            parts["feature"].append(np.where(leaf, -1, tree.feature))
            parts["threshold"].append(_floor32(np.where(leaf, 0.0, tree.threshold)))
            frac = tree.value[:, 0, :] / np.maximum(tree.value[:, 0, :].sum(axis=1, keepdims=True), 1e-300)
            value = np.zeros((tree.node_count, len(classes)))
            value[:, columns] = frac
            parts["value"].append(value)
            offsets.append(start + tree.node_count)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        return cls(
            tuple(features), tuple(classes), arrays["children_left"].astype(np.int32),
            arrays["children_right"].astype(np.int32), arrays["feature"].astype(np.int32),
            arrays["threshold"], arrays["value"].astype(np.float32), np.asarray(offsets, np.int32),
        )  # fmt: skip

    def to_files(self) -> tuple[bytes, dict[str, Any]]:
        """(``forest.safetensors`` bytes, ``forest.json`` object)."""
        from safetensors.numpy import save

        data = save({k: np.ascontiguousarray(getattr(self, k)) for k in _ARRAYS})
        meta = {"format": FOREST_FORMAT, "features": list(self.features), "classes": list(self.classes),
                "n_trees": self.n_trees, "n_nodes": len(self.feature)}  # fmt: skip
        return data, meta


def _floor32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold (same branch for every float32 feature)."""
    t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def load_forest(data: bytes, meta: dict[str, Any], where: str, where_meta: str) -> RegionForest:
    """Build and validate a :class:`RegionForest` from its files.

    Args:
        data, meta: ``forest.safetensors`` bytes and ``forest.json`` object.
        where, where_meta: their display names for messages.

    Raises:
        BundleError: unreadable arrays, wrong dtypes or shapes, node indices out of range or not
            after their parent, features out of range, or metadata that does not fit the arrays.
    """
    from safetensors.numpy import load

    features, classes = meta.get("features", []), meta.get("classes", [])
    if meta.get("format") != FOREST_FORMAT:
        raise BundleError(f"{where_meta}: format {meta.get('format')!r}; expected {FOREST_FORMAT!r}")
    for key, names in (("features", features), ("classes", classes)):
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BundleError(f"{where_meta}: {key!r} must be a non-empty list of names, got {names!r}")
    try:
        arrays = load(data)
    except Exception as exc:
        raise BundleError(f"{where}: not a readable safetensors file ({exc})") from None
    if set(arrays) != set(_ARRAYS):
        raise BundleError(f"{where}: holds {sorted(arrays)}; expected {sorted(_ARRAYS)}")
    forest = RegionForest(tuple(features), tuple(classes), **arrays)
    problem = _problem(forest)
    if problem:
        raise BundleError(f"{where}: {problem}; the forest file is malformed")
    if meta.get("n_trees") != forest.n_trees:
        raise BundleError(f"{where_meta}: n_trees={meta.get('n_trees')!r} but {where} holds {forest.n_trees}")
    return forest


def _problem(f: RegionForest) -> str:
    """What is wrong with the arrays ('' when nothing)."""
    n, k = len(f.feature), len(f.classes)
    dtypes = {"children_left": np.int32, "children_right": np.int32, "feature": np.int32,
              "threshold": np.float32, "value": np.float32, "tree_offsets": np.int32}  # fmt: skip
    for key, dtype in dtypes.items():
        if getattr(f, key).dtype != dtype:
            return f"{key} is {getattr(f, key).dtype}, expected {np.dtype(dtype)}"
    if any(getattr(f, key).shape != (n,) for key in _ARRAYS[:4]):
        return f"node arrays differ in shape (expected {n} nodes each)"
    if f.value.shape != (n, k):
        return f"value has shape {f.value.shape}, expected {(n, k)} (nodes × classes)"
    off = f.tree_offsets
    if off.ndim != 1 or len(off) < 2 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
        return "tree_offsets must rise from 0 to the node count, one tree at least"
    node = np.arange(n)
    end = np.repeat(off[1:], np.diff(off))  # first node after each node's tree
    leaf = f.children_left < 0
    if np.any((f.children_right < 0) != leaf):
        return "a node has one child"
    for child in (f.children_left[~leaf], f.children_right[~leaf]):
        if np.any(child <= node[~leaf]) or np.any(child >= end[~leaf]):
            return "a child index is out of its tree or not after its parent"
    if np.any(f.feature[~leaf] < 0) or np.any(f.feature[~leaf] >= len(f.features)):
        return f"a feature index is outside 0..{len(f.features) - 1}"
    if not np.all(np.isfinite(f.threshold[~leaf])) or not np.all(np.isfinite(f.value)) or np.any(f.value < 0):
        return "thresholds or values are not finite, or values are negative"
    if np.any(np.abs(f.value[leaf].sum(axis=1) - 1) > 1e-3):
        return "leaf values are not class fractions (rows summing to 1)"
    return ""


def read_fusion(reader: BundleReader, info: dict[str, Any]) -> RegionForest:
    """The verified forest of a bundle whose ``bundle.json`` (``info``) records ``fusion``.

    Raises:
        BundleError: a malformed ``fusion`` record, no classifier, features this package does not
            compute, a forest whose classes, features or tree count differ from the record's.
    """
    from braintumor.data.region_features import FEATURES

    where = reader.where("bundle.json")
    fusion = info["fusion"]
    if not isinstance(fusion, dict) or not {"weight_cnn", "features", "trees"} <= set(fusion):
        raise BundleError(f"{where}: 'fusion' must be an object with weight_cnn, features and trees")
    weight = fusion["weight_cnn"]
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight <= 1:
        raise BundleError(f"{where}: fusion.weight_cnn={weight!r}; expected the CNN's share in [0, 1]")
    if "cls" not in info["models"]:
        raise BundleError(f"{where}: records a fusion but has no classifier to fuse the forest with")
    if fusion["features"] != list(FEATURES):
        raise BundleError(
            f"{where}: fusion.features {fusion['features']!r} are not the region features this package "
            f"computes {list(FEATURES)}; upgrade braintumor or recreate the bundle"
        )
    forest = load_forest(reader.read(FOREST_WEIGHTS), reader.read_json(FOREST_META),
                         reader.where(FOREST_WEIGHTS), reader.where(FOREST_META))  # fmt: skip
    if list(forest.features) != fusion["features"]:
        raise BundleError(f"{reader.where(FOREST_META)}: features differ from bundle.json's fusion.features")
    if list(forest.classes) != info["classes"]:
        raise BundleError(
            f"{reader.where(FOREST_META)}: classes {list(forest.classes)} differ from the classifier's "
            f"{info['classes']}"
        )
    if forest.n_trees != fusion["trees"]:
        raise BundleError(f"{where}: fusion.trees={fusion['trees']!r} but the forest holds {forest.n_trees}")
    return forest
