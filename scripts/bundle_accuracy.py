"""Score a bundle as a user meets it: ``braintumor analyze`` on slices its models never saw.

figshare: the test patients of a run's fold (``--splits RUN/splits.json --fold K``): class accuracy
(also when each patient's slices vote, as ``analyze`` labels a volume), the share of tumour slices
called "no tumour", and per-slice Dice of the analysis masks. Kaggle
(``--kaggle``): 4-class accuracy on the Testing images, and on those without a copy in the bundle's
training data (Kaggle Training for the gate or a classify-only Kaggle bundle; with ``--figshare``
also the fold's training and validation patients' figshare slices, for the segmenter and
classifier; copies as ``data/dedup.py`` finds them).

LGG (``--lgg``): mean per-patient Dice of the test patients' folders analysed as published
(``--analyze-option=--slices-as-images`` for the slices one by one).

    python scripts/bundle_accuracy.py --bundle t1ce --figshare ../shared/data/figshare \
        --splits runs/figshare-unet-fold0/splits.json --fold 0 --kaggle ../shared/data/kaggle4
    python scripts/bundle_accuracy.py --bundle kaggle4 --kaggle ../shared/data/kaggle4
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
from braintumor.evaluation import patient_consensus


def analyze(bundle: str, images: list[str], out: Path, *extra: str) -> pd.DataFrame:
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
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return pd.DataFrame(json.loads(done.stdout)["results"])


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def patient_vote_accuracy(test: pd.DataFrame, results: pd.DataFrame) -> float:
    """Accuracy when each patient's slices called tumour take the patient's class: the
    :func:`~braintumor.evaluation.patient_consensus` of their probabilities, as ``analyze`` labels a
    volume; a slice called "no tumour" stays wrong."""
    tumour = results["tumour"].to_numpy(dtype=bool)
    calls = results["class"].to_numpy(dtype=object).copy()
    probs = pd.DataFrame(list(results["probabilities"][tumour])).fillna(0.0)
    voted = patient_consensus(probs, list(test["patient_id"].astype(str)[tumour]))
    calls[tumour] = probs.columns[voted.argmax(axis=1)]
    return float(np.mean(calls == test["label"].to_numpy()))


def figshare_scores(
    bundle: str, root: Path, splits: Splits, fold: int, out: Path, *extra: str
) -> dict[str, object]:
    frame = load_dataset(root).frame
    test = frame[frame["patient_id"].astype(str).isin(set(splits.folds[fold]["test"]))]
    results = analyze(bundle, list(test["image"]), out, *extra)
    correct = results["class"].to_numpy() == test["label"].to_numpy()
    dices = []
    for (_, row), (_, res) in zip(test.iterrows(), results.iterrows(), strict=True):
        mask_file = res["outputs"].get("mask")
        pred = read_mask(mask_file).astype(bool) if mask_file else np.zeros(1, bool)
        truth = read_mask(row["mask"]).astype(bool)
        dices.append(dice(pred if pred.shape == truth.shape else np.zeros_like(truth), truth))
    slice_dice, labels = np.asarray(dices), test["label"].to_numpy()
    by_class = {}  # recall and per-slice Dice of each true class
    for label in sorted(set(labels)):
        rows = labels == label
        by_class[str(label)] = {
            "n": int(rows.sum()),
            "recall": round(float(correct[rows].mean()), 4),
            "dice_per_slice": round(float(slice_dice[rows].mean()), 4),
        }
    return {
        "n": len(test),
        "patients": int(test["patient_id"].nunique()),
        "accuracy": round(float(correct.mean()), 4),
        "accuracy_patient_vote": round(patient_vote_accuracy(test, results), 4),
        "called_no_tumour": round(float((results["class"] == "notumor").mean()), 4),
        "dice_per_slice": round(float(slice_dice.mean()), 4),
        "by_class": by_class,
        "warned": round(float((results["warning"] != "").mean()), 4),
    }


def lgg_scores(
    bundle: str, root: Path, splits: Splits, fold: int, out: Path, *extra: str
) -> dict[str, float | None]:
    """Mean per-patient (volumetric) Dice of the analysis masks over the fold's test patients, each
    patient folder given as it is published (``analyze`` makes it one volume, unless ``extra`` says
    ``--slices-as-images``)."""
    import nibabel as nib

    from braintumor.data.volumes import nifti_to_view
    from braintumor.evaluation import SegmentationAccumulator

    frame = load_dataset(root).frame
    test = frame[frame["patient_id"].astype(str).isin(set(splits.folds[fold]["test"]))]
    folders = sorted({str(Path(p).parent) for p in test["image"]})
    results = analyze(bundle, folders, out, *extra)
    acc = SegmentationAccumulator(store_masks=False, compute_hd95=False)
    by_input = {Path(r["input"]).name: r for _, r in results.iterrows()}
    for pid, rows in test.sort_values("slice").groupby("patient_id"):
        truths = np.stack([read_mask(m) for m in rows["mask"]])
        if "--slices-as-images" in extra:
            preds = np.stack([read_mask(by_input[Path(i).name]["outputs"]["mask"]) for i in rows["image"]])
        else:
            nifti = nib.Nifti1Image.from_filename(
                by_input[Path(rows["image"].iloc[0]).parent.name]["outputs"]["mask_nifti"]
            )
            preds = nifti_to_view(np.asarray(nifti.dataobj), nifti.affine)
        acc.add(preds, truths, [str(pid)] * len(rows), list(rows["sample_id"]), list(rows["slice"]))
    per_patient = acc.per_patient()
    small = per_patient["true_volume"] < 1500
    return {
        "patients": len(per_patient),
        "dice_per_patient": round(float(per_patient["dice"].mean()), 4),
        "dice_per_patient_std": round(float(per_patient["dice"].std(ddof=0)), 4),
        "dice_small_tumours": round(float(per_patient.loc[small, "dice"].mean()), 4) if small.any() else None,
        "n_small": int(small.sum()),
    }


def kaggle_scores(
    bundle: str, root: Path, figshare_seen: list[str], out: Path, *extra: str
) -> dict[str, float]:
    frame = load_dataset(root).frame
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    results = analyze(bundle, list(test["image"]), out, *extra)
    correct = results["class"].to_numpy() == test["label"].to_numpy()
    query = copy_features(list(test["image"]))
    copied = {m.query for m in match_copies(query, copy_features(list(train["image"])))}
    if figshare_seen:
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
    parser.add_argument("--figshare", type=Path)
    parser.add_argument("--lgg", type=Path, help="LGG root (kaggle_3m patient folders)")
    parser.add_argument("--splits", type=Path, help="splits.json of the figshare/LGG fold")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--kaggle", type=Path)
    parser.add_argument("--analyze-option", action="append", default=[], help="passed to analyze")
    args = parser.parse_args()
    if (args.lgg or args.figshare) and not args.splits:
        parser.error("--figshare and --lgg need --splits (the fold's splits.json)")
    splits = Splits.load(args.splits) if args.splits else None
    report: dict[str, object] = {"bundle": args.bundle, "analyze_options": args.analyze_option}
    extra = tuple(args.analyze_option)
    with tempfile.TemporaryDirectory() as tmp:
        if args.lgg and splits:
            report["lgg"] = lgg_scores(args.bundle, args.lgg, splits, args.fold, Path(tmp) / "l", *extra)
        if args.figshare and splits:
            report["figshare"] = figshare_scores(
                args.bundle, args.figshare, splits, args.fold, Path(tmp) / "f", *extra
            )
        if args.kaggle:
            figshare_seen: list[str] = []
            if args.figshare and splits:
                frame = load_dataset(args.figshare).frame
                seen = set(splits.folds[args.fold]["train"]) | set(splits.folds[args.fold]["val"])
                figshare_seen = list(frame[frame["patient_id"].astype(str).isin(seen)]["image"])
            report["kaggle"] = kaggle_scores(args.bundle, args.kaggle, figshare_seen, Path(tmp) / "k", *extra)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
