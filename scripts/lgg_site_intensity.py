"""How bright the annotated FLAIR abnormality is at each TCGA site, as the LGG model sees it.

Each patient's slices are normalised as ``configs/lgg-unet-cpu.yaml`` says (per patient, 10th-99th
percentile per channel); the table gives, per site, the mean normalised FLAIR inside the masks, in
the rest of the brain (non-zero FLAIR) and their difference, with the mean tumour volume in pixels.

    python scripts/lgg_site_intensity.py ../shared/data/lgg128
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from braintumor.config import load_config
from braintumor.data.lgg import FLAIR_CHANNEL as FLAIR
from braintumor.data.lgg import load_lgg, tcga_site
from braintumor.data.preprocess import normalize_images, to_channels_first
from braintumor.data.readers import read_image, read_mask

DATA = load_config(Path(__file__).resolve().parents[1] / "configs" / "lgg-unet-cpu.yaml").data


def patient_row(pid: str, images: list[str], masks: list[str]) -> dict[str, float | str]:
    """Mean normalised FLAIR inside and outside the annotation for one patient."""
    raw = [to_channels_first(read_image(p)) for p in images]
    mask = np.stack([read_mask(p, r.shape[1:]) for p, r in zip(masks, raw, strict=True)]) > 0
    flair = np.stack([im[FLAIR] for im in normalize_images(raw, DATA.normalization, DATA.percentiles)])
    brain = np.stack([r[FLAIR] for r in raw]) > 0
    return {
        "site": tcga_site(pid),
        "tumour": float(flair[mask].mean()) if mask.any() else np.nan,
        "brain": float(flair[brain & ~mask].mean()),
        "volume": float(mask.sum()),
    }


def main(data: str) -> None:
    frame = load_lgg(data).frame
    rows = [
        patient_row(str(pid), group["image"].tolist(), group["mask"].tolist())
        for pid, group in frame.groupby("patient_id", sort=True)
    ]
    table = pd.DataFrame(rows)
    table["contrast"] = table["tumour"] - table["brain"]
    summary = table.groupby("site").agg(
        patients=("tumour", "size"), tumour=("tumour", "mean"), brain=("brain", "mean"),
        contrast=("contrast", "mean"), volume=("volume", "mean"),
    )  # fmt: skip
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lgg128")
