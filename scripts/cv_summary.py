"""Aggregate segmentation fold runs trained one by one (``train segment --set data.fold=k``) as ``cv`` does,
and break the pooled per-patient Dice down by tumour volume and by TCGA site (the institution).

    python scripts/cv_summary.py runs/lgg-unet-38ep-mm runs/lgg-mm-fold1 runs/lgg-unet-38ep-fold2-mm \
        runs/lgg-mm-fold3 runs/lgg-mm-fold4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from braintumor.data.lgg import tcga_site
from braintumor.run_dir import RunDir
from braintumor.training.cv import aggregate

BINS = [0, 1500, 3000, float("inf")]  # total tumour pixels per patient


def main(run_dirs: list[str]) -> None:
    results = [json.loads(RunDir(Path(d)).metrics.read_text()) for d in run_dirs]
    summary = aggregate(results, "segment")
    print("fold means:", [round(r["dice_per_patient_mean"], 3) for r in results])
    print(
        f"mean ± std (over folds): {summary['mean']['dice_per_patient_mean']:.3f} ± "
        f"{summary['std']['dice_per_patient_mean']:.3f}"
    )
    print("pooled:", {k: round(v, 3) for k, v in summary["pooled_per_patient_dice"].items()})
    table = pd.concat([pd.read_csv(RunDir(Path(d)).per_patient) for d in run_dirs])
    for key in (pd.cut(table["true_volume"], BINS, right=False), table["patient_id"].map(tcga_site)):
        print(table.groupby(key, observed=True)["dice"].agg(["count", "mean", "median"]).round(3).to_string())
    print(f"Spearman rho (volume, Dice): {table['true_volume'].corr(table['dice'], method='spearman'):.3f}")
    print(
        "below 0.5:",
        table.loc[table["dice"] < 0.5, ["patient_id", "dice", "true_volume"]].to_string(index=False),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
