"""Honest, patient-level splits: stratified group k-fold, official folds, saved and reused.

Every split here is made over *groups*: patients when the index knows them, single images
otherwise (with a warning, since slices of one patient would then leak across folds). A fold is
``{"train": [...], "val": [...], "test": [...]}`` of group ids; :meth:`Splits.subset` turns a part
back into a SampleIndex.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.data.index import SampleIndex
from braintumor.errors import BrainTumorError, ConfigError, DataError
from braintumor.io_utils import atomic_write_json

METHODS = ("auto", "official", "patient-kfold", "image-kfold", "predefined", "site", "all")
PARTS = ("train", "val", "test")


class SplitLeakageError(BrainTumorError, ValueError):
    """A patient (or image) appears in two parts of the same fold."""


def _unit(index: SampleIndex) -> str:
    return "patient" if index.patient_ids_known else "image"


def group_column(index: SampleIndex) -> str:
    """The column splits group by: ``patient_id``, or ``sample_id`` when patient ids are unknown."""
    return "patient_id" if index.patient_ids_known else "sample_id"


def group_labels(index: SampleIndex) -> dict[str, str]:
    """Each group's (patient's, or image's) most frequent label; ties go to the first class."""
    order = {c: i for i, c in enumerate(index.classes)}
    out: dict[str, str] = {}
    frame = index.frame
    for gid, labels in frame.groupby(group_column(index), sort=True)["label"]:
        counts = Counter(labels)
        out[str(gid)] = min(counts, key=lambda c: (-counts[c], order.get(c, len(order)), c))
    return out


def _warn_image_level(index: SampleIndex) -> None:
    warnings.warn(
        f"dataset(s) {index.datasets} have no patient ids: splits are image-level, so slices of "
        "one patient may land on both sides and scores may be optimistic",
        UserWarning,
        stacklevel=3,
    )


def patient_kfold(
    index: SampleIndex, k: int = 5, seed: int = 42, strata: Mapping[str, str] | None = None
) -> list[tuple[list[str], list[str]]]:
    """Stratified group k-fold over patients.

    Args:
        index: the samples; groups are ``patient_id`` (``sample_id`` when patient ids are unknown,
            with a warning).
        k: number of folds (2 or more, at most the number of patients).
        seed: shuffling seed.
        strata: optional group id -> stratum overriding the patients' majority label, e.g. a
            tumour-burden bucket for segmentation data where every patient has the same label.

    Returns:
        For each fold, (sorted train group ids, sorted test group ids).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not index.patient_ids_known:
        _warn_image_level(index)
    col = group_column(index)
    labels = dict(group_labels(index))
    if strata is not None:
        labels.update({g: str(s) for g, s in strata.items() if g in labels})
    n = len(labels)
    if k < 2:
        raise ValueError(f"k={k}: k-fold needs k >= 2")
    if k > n:
        raise ValueError(
            f"k={k} folds need at least {k} {_unit(index)}s but the index has {n}; use k <= {n} or add data"
        )
    groups = index.frame[col].astype(str).to_numpy()
    y = np.array([labels[g] for g in groups])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
        warnings.simplefilter("ignore", UserWarning)
        for train_rows, test_rows in splitter.split(np.zeros(len(y)), y, groups):
            folds.append((sorted(set(groups[train_rows])), sorted(set(groups[test_rows]))))
    return folds


def site_kfold(index: SampleIndex) -> list[tuple[list[str], list[str]]]:
    """Leave one site out: fold f tests every patient of the f-th site (sorted by name) and trains
    on the others; the sites come from ``index.extra["sites"]`` (patient id -> site, e.g. the TCGA
    tissue-source site ``CS`` of ``TCGA_CS_4941``), so a test fold's scanners and protocols are
    unseen in training."""
    sites = index.extra.get("sites")
    if not isinstance(sites, Mapping) or not sites:
        raise ValueError(
            "split method 'site' needs the patients' sites (index.extra['sites']); the LGG loader "
            "records them (TCGA tissue-source site), other datasets do not"
        )
    patients = sorted({str(p) for p in index.frame["patient_id"]})
    missing = [p for p in patients if p not in sites]
    if missing:
        raise ValueError(f"{len(missing)} patient(s) have no site (e.g. {missing[:3]})")
    by_site: dict[str, list[str]] = {}
    for pid in patients:
        by_site.setdefault(str(sites[pid]), []).append(pid)
    if len(by_site) < 2:
        raise ValueError(f"leave-one-site-out needs 2 or more sites, found {sorted(by_site)}")
    return [([p for p in patients if sites[p] != site], members) for site, members in sorted(by_site.items())]


def official_kfold(index: SampleIndex) -> list[tuple[list[str], list[str]]]:
    """Folds from ``index.extra["official_folds"]`` (sample_id -> fold number; fold f = test f).

    The figshare ``cvind`` folds are meant to be patient-level; this is checked, not trusted: a
    patient found in several folds triggers a warning and is assigned to its most frequent fold.
    """
    raw = index.extra.get("official_folds")
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("the index has no official folds (index.extra['official_folds'])")
    col = group_column(index)
    missing = [s for s in index.frame["sample_id"] if s not in raw]
    if missing:
        raise ValueError(
            f"{len(missing)} sample(s) have no official fold (e.g. {missing[:3]}); "
            "the fold table does not match the index"
        )
    per_group: dict[str, Counter[int]] = {}
    for sid, gid in zip(index.frame["sample_id"], index.frame[col], strict=True):
        per_group.setdefault(str(gid), Counter())[int(raw[sid])] += 1
    spanning = {g: sorted(c) for g, c in per_group.items() if len(c) > 1}
    if spanning:
        examples = ", ".join(f"{g}: folds {f}" for g, f in list(spanning.items())[:5])
        warnings.warn(
            f"{len(spanning)} patient(s) span several official folds ({examples}); each is "
            "assigned to its most frequent fold to keep the split patient-level",
            UserWarning,
            stacklevel=2,
        )
    assigned = {g: min(c, key=lambda f: (-c[f], f)) for g, c in per_group.items()}
    everyone = sorted(assigned)
    folds = []
    for f in sorted(set(assigned.values())):
        test = sorted(g for g in everyone if assigned[g] == f)
        folds.append((sorted(set(everyone) - set(test)), test))
    return folds


def train_val_split(
    train_patients: Sequence[str], index: SampleIndex, val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Hold out ``val_fraction`` of ``train_patients`` for validation, stratified by label.

    At least one validation patient when ``val_fraction > 0``; at least one stays for training.
    Classes get validation places in proportion to their size (largest remainders first).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} must lie in [0, 1)")
    patients = sorted(set(train_patients))
    if val_fraction == 0.0:
        return patients, []
    if len(patients) < 2:
        raise ValueError(
            f"cannot hold out a validation set from {len(patients)} training patient(s); "
            "use val_fraction=0 or more data"
        )
    labels = group_labels(index)
    by_class: dict[str, list[str]] = {}
    for p in patients:
        by_class.setdefault(labels.get(p, ""), []).append(p)
    n_val = min(max(1, round(val_fraction * len(patients))), len(patients) - 1)
    exact = {c: n_val * len(ps) / len(patients) for c, ps in sorted(by_class.items())}
    quota = {c: int(q) for c, q in exact.items()}
    for c in sorted(exact, key=lambda c: (quota[c] - exact[c], c))[: n_val - sum(quota.values())]:
        quota[c] += 1
    rng = np.random.default_rng(seed)
    val: list[str] = []
    for c, ps in sorted(by_class.items()):
        val += [ps[i] for i in rng.permutation(len(ps))[: quota[c]]]
    return sorted(set(patients) - set(val)), sorted(val)


def predefined_split(index: SampleIndex) -> tuple[list[str], list[str]]:
    """(train sample ids, test sample ids) from the dataset's own ``split`` column."""
    split = index.frame["split"].astype(str).str.lower()
    bad = sorted(set(split) - {"train", "test"})
    if bad:
        raise ValueError(
            f"the split column holds {bad}; a predefined split needs every row to be 'train' or "
            "'test' (e.g. Kaggle Training/Testing folders); use k-fold splits instead"
        )
    sids = index.frame["sample_id"].astype(str)
    train, test = sorted(sids[split == "train"]), sorted(sids[split == "test"])
    if not train or not test:
        raise ValueError(f"predefined split has {len(train)} train and {len(test)} test samples")
    return train, test


@dataclass
class Splits:
    """Saved cross-validation splits (``splits.json``).

    Attributes:
        method: ``official``, ``patient-kfold``, ``image-kfold``, ``predefined``, ``site`` or ``all``.
        k: number of folds.
        seed: seed of the shuffles.
        folds: per fold ``{"train": [...], "val": [...], "test": [...]}`` of group ids.
        unit: ``patient`` (ids are patient ids) or ``image`` (ids are sample ids).
        val_fraction: share of training groups held out for validation.
    """

    method: str
    k: int
    seed: int
    folds: list[dict[str, list[str]]] = field(default_factory=list)
    unit: str = "patient"
    val_fraction: float = 0.0

    def groups(self) -> list[str]:
        """Every group id the splits cover."""
        return sorted({g for fold in self.folds for part in PARTS for g in fold.get(part, [])})

    def check_fold(self, fold: int) -> int:
        """``fold`` if these splits have it, else a ConfigError saying which folds they have."""
        if 0 <= fold < len(self.folds):
            return fold
        if self.method == "predefined":
            have = "the dataset's own Training/Testing split, one fold (0); train it, don't cross-validate"
        elif self.method == "all":
            have = "one fold (0) training on every patient; train it, don't cross-validate"
        else:
            have = f"{len(self.folds)} {self.method} folds (0..{len(self.folds) - 1})"
        raise ConfigError(f"data.fold={fold} does not exist: the splits are {have}")

    def subset(self, index: SampleIndex, fold: int, part: str) -> SampleIndex:
        """The rows of ``index`` in ``part`` (train/val/test) of fold ``fold``."""
        fold = self.check_fold(fold)
        if part not in PARTS:
            raise ValueError(f"part={part!r}; expected one of {PARTS}")
        col = "patient_id" if self.unit == "patient" else "sample_id"
        return index.subset(index.frame[col].astype(str).isin(set(self.folds[fold][part])))

    def save(self, path: str | Path) -> None:
        """Write as JSON, atomically."""
        atomic_write_json(Path(path), asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Splits:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "splits file not found")
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            splits = cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(path, f"not a valid splits file ({exc}); delete it to remake") from None
        if any(set(f) != set(PARTS) for f in splits.folds):
            raise DataError(path, f"each fold must have exactly the parts {PARTS}")
        return splits


def _resolve(index: SampleIndex, k: int, method: str) -> tuple[str, int]:
    """The concrete method and fold count ``make_splits`` would use."""
    if method not in METHODS:
        raise ValueError(f"unknown split method {method!r}; expected one of {METHODS}")
    if method == "auto":
        method = "official" if index.extra.get("official_folds") else "patient-kfold"
    if method == "patient-kfold" and not index.patient_ids_known:
        method = "image-kfold"
    if method == "official":
        k = len(set(index.extra.get("official_folds", {}).values()))
    if method == "site":
        k = len(set(index.extra.get("sites", {}).values()))
    return method, 1 if method in ("predefined", "all") else k


def make_splits(
    index: SampleIndex, k: int = 5, seed: int = 42, val_fraction: float = 0.15, method: str = "auto"
) -> Splits:
    """Make splits: ``auto`` = official folds if the index has them, else patient k-fold
    (image-level, with a warning, when patient ids are unknown). ``predefined`` uses the dataset's
    train/test column as a single fold; ``site`` leaves one site out per fold (:func:`site_kfold`);
    ``all`` is one fold that trains (and validates) on every group and tests none."""
    method, k = _resolve(index, k, method)
    if method in ("image-kfold", "predefined"):
        index = _as_images(index)
    if method == "predefined":
        train, test = predefined_split(index)
        pairs = [(train, test)]
    elif method == "official":
        if not index.patient_ids_known:  # official test folds, but train/val drawn per image
            _warn_image_level(index)
        pairs = official_kfold(index)
    elif method == "site":
        pairs = site_kfold(index)
    elif method == "all":
        pairs = [(sorted({str(g) for g in index.frame[group_column(index)]}), [])]
    else:
        pairs = patient_kfold(index, k, seed)
    folds = []
    for i, (train, test) in enumerate(pairs):
        tr, va = train_val_split(train, index, val_fraction, seed + i)
        folds.append({"train": tr, "val": va, "test": list(test)})
    splits = Splits(method, k, seed, folds, _unit(index), val_fraction)
    check_no_leakage(splits)
    return splits


def _as_images(index: SampleIndex) -> SampleIndex:
    """The same rows seen as image-level data (every sample its own group)."""
    return SampleIndex(index.frame, list(index.classes), False, index.extra)


def check_no_leakage(splits: Splits) -> None:
    """Raise SplitLeakageError if a group appears in two parts of one fold."""
    for i, fold in enumerate(splits.folds):
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = sorted(set(fold[a]) & set(fold[b]))
            if both:
                raise SplitLeakageError(
                    f"fold {i}: {len(both)} {splits.unit}(s) in both {a} and {b}, e.g. {both[:5]}; "
                    "the splits leak; remake them with make_splits"
                )


def load_or_make_splits(
    path: str | Path,
    index: SampleIndex,
    k: int = 5,
    seed: int = 42,
    val_fraction: float = 0.15,
    method: str = "auto",
) -> Splits:
    """Reuse ``path`` (``splits.json``) if it exists and fits ``index``; else make and save it.

    Raises:
        DataError: the saved splits cover other patients, or were made with another method, k or
            seed than asked for.
    """
    path = Path(path)
    if not path.is_file():
        splits = make_splits(index, k, seed, val_fraction, method)
        splits.save(path)
        return splits
    splits = Splits.load(path)
    fix = "delete it to remake the splits, or point the run at another folder"
    want_method, want_k = _resolve(index, k, method)
    saved = (splits.method, splits.k, splits.seed, splits.val_fraction)
    if saved != (want_method, want_k, seed, val_fraction):
        raise DataError(
            path,
            f"splits were made with method={saved[0]}, k={saved[1]}, seed={saved[2]}, "
            f"val_fraction={saved[3]} but method={want_method}, k={want_k}, seed={seed}, "
            f"val_fraction={val_fraction} was asked; {fix}",
        )
    col = "patient_id" if splits.unit == "patient" else "sample_id"
    have, want = set(splits.groups()), set(index.frame[col].astype(str))
    if have != want:
        raise DataError(
            path,
            f"splits file was made for other data: {len(want - have)} {splits.unit}(s) of this "
            f"dataset are not in it (e.g. {sorted(want - have)[:3]}) and {len(have - want)} of its "
            f"are not in the dataset (e.g. {sorted(have - want)[:3]}); {fix}",
        )
    check_no_leakage(splits)
    return splits
