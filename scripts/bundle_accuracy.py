"""Score a bundle as a user meets it: ``braintumor analyze`` on slices its models never saw.

figshare: the test patients of a run's fold (``--splits RUN/splits.json --fold K``): class accuracy,
the share of tumour slices called "no tumour", and per-slice Dice of the analysis masks. Kaggle
(``--kaggle``): 4-class accuracy on the Testing images, and on those without a copy in the bundle's
training data (Kaggle Training for the gate, the fold's training and validation patients' figshare
slices for the segmenter and classifier; copies as ``data/dedup.py`` finds them).

    python scripts/bundle_accuracy.py --bundle t1ce --figshare ../shared/data/figshare \
        --splits runs/figshare-unet-fold0/splits.json --fold 0 --kaggle ../shared/data/kaggle4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from braintumor.data.dedup import copy_features, match_copies
from braintumor.data.loaders import load_dataset
from braintumor.data.readers import read_mask
from braintumor.data.splits import Splits


def analyze(bundle: str, images: list[str], out: Path) -> pd.DataFrame:
    command = [
        sys.executable,
        "-c",
        "from braintumor.cli import app; app()",
        "analyze",
        *images,
        "--bundle",
        bundle,
        "--out",
        str(out),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return pd.DataFrame(json.loads(done.stdout)["results"])


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def figshare_scores(bundle: str, root: Path, splits: Splits, fold: int, out: Path) -> dict[str, float]:
    frame = load_dataset(root).frame
    test = frame[frame["patient_id"].astype(str).isin(set(splits.folds[fold]["test"]))]
    results = analyze(bundle, list(test["image"]), out)
    correct = (results["class"].to_numpy() == test["label"].to_numpy()).mean()
    dices = []
    for (_, row), (_, res) in zip(test.iterrows(), results.iterrows(), strict=True):
        mask_file = res["outputs"].get("mask")
        pred = read_mask(mask_file).astype(bool) if mask_file else np.zeros(1, bool)
        truth = read_mask(row["mask"]).astype(bool)
        dices.append(dice(pred if pred.shape == truth.shape else np.zeros_like(truth), truth))
    return {
        "n": len(test),
        "patients": int(test["patient_id"].nunique()),
        "accuracy": round(float(correct), 4),
        "called_no_tumour": round(float((results["class"] == "notumor").mean()), 4),
        "dice_per_slice": round(float(np.mean(dices)), 4),
        "warned": round(float((results["warning"] != "").mean()), 4),
    }


def kaggle_scores(bundle: str, root: Path, figshare_seen: list[str], out: Path) -> dict[str, float]:
    frame = load_dataset(root).frame
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    results = analyze(bundle, list(test["image"]), out)
    correct = results["class"].to_numpy() == test["label"].to_numpy()
    query = copy_features(list(test["image"]))
    copied = {m.query for m in match_copies(query, copy_features(list(train["image"])))}
    copied |= {m.query for m in match_copies(query, copy_features(figshare_seen))}
    unseen = np.array([i not in copied for i in range(len(test))])
    return {
        "n": len(test),
        "accuracy": round(float(correct.mean()), 4),
        "n_unseen": int(unseen.sum()),
        "accuracy_unseen": round(float(correct[unseen].mean()), 4) if unseen.any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="t1ce")
    parser.add_argument("--figshare", type=Path, required=True)
    parser.add_argument("--splits", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--kaggle", type=Path)
    args = parser.parse_args()
    splits = Splits.load(args.splits)
    report: dict[str, object] = {"bundle": args.bundle}
    with tempfile.TemporaryDirectory() as tmp:
        report["figshare"] = figshare_scores(args.bundle, args.figshare, splits, args.fold, Path(tmp) / "f")
        if args.kaggle:
            frame = load_dataset(args.figshare).frame
            seen = set(splits.folds[args.fold]["train"]) | set(splits.folds[args.fold]["val"])
            figshare_seen = list(frame[frame["patient_id"].astype(str).isin(seen)]["image"])
            report["kaggle"] = kaggle_scores(args.bundle, args.kaggle, figshare_seen, Path(tmp) / "k")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
