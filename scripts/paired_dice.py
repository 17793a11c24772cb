"""Compare two segmentation runs scored on the same patients: per-patient Dice paired, Wilcoxon
signed-rank test, precision and recall, and the patients whose Dice moved by more than 0.1.

    python scripts/paired_dice.py runs/lgg-site-fold1-batchdice runs/lgg-site-fold1-ctx1
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from scipy.stats import wilcoxon

from braintumor.run_dir import RunDir

SMALL = 1500  # tumour pixels per patient below which a tumour counts as small


def per_patient(run: str) -> pd.DataFrame:
    return pd.read_csv(RunDir(Path(run)).per_patient).set_index("patient_id")


def main(a: str, b: str) -> None:
    joined = per_patient(a).merge(per_patient(b), left_index=True, right_index=True, suffixes=("_a", "_b"))
    if joined.empty:
        raise SystemExit(f"{a} and {b} share no patients; compare runs scored on the same fold")
    diff = joined["dice_b"] - joined["dice_a"]
    print(f"{len(joined)} patients: A {joined['dice_a'].mean():.3f}, B {joined['dice_b'].mean():.3f}, "
          f"paired {diff.mean():+.3f}, Wilcoxon p {wilcoxon(diff).pvalue:.4f}")  # fmt: skip
    for metric in ("precision", "recall"):
        print(f"{metric}: {joined[f'{metric}_a'].mean():.3f} -> {joined[f'{metric}_b'].mean():.3f}")
    small = joined[joined["true_volume_a"] < SMALL]
    print(f"< {SMALL} px ({len(small)}): {small['dice_a'].mean():.3f} -> {small['dice_b'].mean():.3f}")
    moved = joined.loc[diff.abs() > 0.1, ["dice_a", "dice_b", "true_volume_a"]]
    print(moved.round(3).to_string() if len(moved) else "no patient moved by more than 0.1")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
