"""Copy one TCGA site's LGG patients with the pre- and post-contrast channels replaced by FLAIR.

The LGG release encodes a missing sequence as a copy of FLAIR; scoring a run on such a copy of its
test site (``braintumor evaluate RUN --data OUT --out RUN-flair-only``, then
``scripts/paired_dice.py RUN RUN-flair-only``) measures how much the model leans on the other
sequences. Masks and ``data.csv`` are copied as they are.

    python scripts/lgg_flair_only.py ../shared/data/lgg128 FG runs/lgg128-fg-flair-only
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import tifffile

from braintumor.data.lgg import FLAIR_CHANNEL as FLAIR


def copy_flair_only(data: Path, site: str, out: Path) -> int:
    """Write the site's patient folders under ``out/kaggle_3m``; returns the number of patients."""
    source = data / "kaggle_3m" if (data / "kaggle_3m").is_dir() else data
    target = out / "kaggle_3m"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "data.csv", target / "data.csv")
    patients = sorted(p for p in source.glob(f"TCGA_{site}_*") if p.is_dir())
    if not patients:
        raise SystemExit(f"{source}: no patient folder of site {site!r} (TCGA_{site}_*)")
    for patient in patients:
        (target / patient.name).mkdir(exist_ok=True)
        for path in patient.glob("*.tif"):
            if path.name.endswith("_mask.tif"):
                shutil.copy(path, target / patient.name / path.name)
                continue
            image = tifffile.imread(path)
            if image.ndim != 3 or image.shape[-1] != 3:
                raise SystemExit(f"{path}: expected an H×W×3 slice, got shape {image.shape}")
            flair_only = np.repeat(image[..., FLAIR : FLAIR + 1], 3, axis=-1)
            tifffile.imwrite(target / patient.name / path.name, flair_only)
    return len(patients)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    count = copy_flair_only(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
    print(f"{count} patients written to {sys.argv[3]}")
