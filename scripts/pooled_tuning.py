"""Choose one evaluation setting for several segmentation runs on their validation patients pooled.

Each folder is the ``--out`` of ``braintumor evaluate RUN --tune``: its ``tuning.csv`` scores every
setting on that fold's validation patients, its ``metrics.json`` says how many there were. The mean
per-patient Dice over all of them (each fold weighted by its patient count) ranks the settings.

    python scripts/pooled_tuning.py runs/tune/lgg-site-fold{0,1,2,3}-batchdice runs/tune/cv-fold0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from braintumor.run_dir import RunDir

SETTING = ["tta", "threshold", "postprocess_scope", "largest_component", "component_fraction", "fill_holes"]


def pooled(folders: list[str]) -> pd.Series:
    """Pooled validation Dice per setting, best first."""
    frames = []
    for folder in folders:
        tuned = RunDir(Path(folder))
        table = pd.read_csv(tuned.tuning)
        table["patients"] = json.loads(tuned.metrics.read_text())["tuning"]["n_val_patients"]
        frames.append(table)
    grid = pd.concat(frames)
    grid["weighted"] = grid["val_dice_per_patient"] * grid["patients"]
    sums = grid.groupby(SETTING)[["weighted", "patients"]].sum()
    scores = (sums["weighted"] / sums["patients"]).rename("val_dice_per_patient").reset_index()
    # ties: the simpler setting first (only the largest component kept)
    ranked = scores.sort_values(["val_dice_per_patient", "component_fraction"], ascending=False)
    return ranked.set_index(SETTING)["val_dice_per_patient"]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    ranked = pooled(sys.argv[1:])
    print(ranked.head(10).round(4).to_string())
