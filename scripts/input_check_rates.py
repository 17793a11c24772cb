"""Measure the input-quality check (inference/input_check.py): how often each kind of input is flagged.

The profile is fitted on the figshare T1-CE slices of official folds 2-5 and scored on fold 1
(patients it never saw: the false-flag rate), on LGG slices (FLAIR alone, and the 3-channel
pre-contrast/FLAIR/post-contrast TIFF as published), on Kaggle "notumor" images, on noise images
and on natural photographs (scikit-image's sample photos).

    python scripts/input_check_rates.py ../shared/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from braintumor.bundle.input_check import fit_profile, slice_features
from braintumor.data.loaders import load_dataset
from braintumor.data.readers import read_image


def features(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([slice_features(a) for a in images])


def noise_images(rng: np.random.Generator) -> list[np.ndarray]:
    sizes = [8, 16, 64, 256, 512, 1000]
    uniform = [rng.integers(0, 256, (s, s), dtype=np.uint8) for s in sizes]
    gauss = [np.clip(rng.normal(100, 40, (s, s)), 0, 255).astype(np.uint8) for s in sizes]
    colour = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in sizes]
    return uniform + gauss + colour


def photographs() -> list[np.ndarray]:
    import skimage.data as sd

    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "horse", "moon", "page", "text", "coins",
             "grass", "gravel", "brick", "retina", "hubble_deep_field", "immunohistochemistry"]  # fmt: skip
    images = [np.asarray(getattr(sd, n)()) for n in names]
    return images + [a.mean(axis=2).astype(np.uint8) for a in images if a.ndim == 3]


def main(shared: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    figshare = load_dataset(shared / "figshare")
    folds = figshare.extra["official_folds"]
    frame = figshare.frame
    test = frame["sample_id"].map(folds) == 1
    fit = frame[~test]
    fitted = features([read_image(p) for p in fit["image"]])
    profile = fit_profile(fitted, list(fit["patient_id"]), "figshare T1-CE")
    lgg = load_dataset(shared / "lgg128").frame.sample(400, random_state=0)
    lgg_rgb = [read_image(p) for p in lgg["image"]]
    kaggle = load_dataset(shared / "kaggle4").frame
    notumor = kaggle[kaggle["label"] == "notumor"].sample(400, random_state=0)
    sets = {
        "figshare T1-CE, unseen patients (fold 1)": [read_image(p) for p in frame[test]["image"]],
        "LGG FLAIR channel": [a[..., 1] for a in lgg_rgb],
        "LGG 3-channel TIFF": lgg_rgb,
        "Kaggle notumor": [read_image(p) for p in notumor["image"]],
        "noise (uniform, Gaussian, colour; 8-1000 px)": noise_images(rng),
        "photographs (scikit-image samples, colour and gray)": photographs(),
    }
    rates = {}
    for name, images in sets.items():
        d = profile.distance(features(images))
        rates[name] = {"n": len(images), "flagged": round(float((d > profile.threshold).mean()), 4)}
    return {"threshold": round(profile.threshold, 2), "fitted_on": len(profile.reference), "rates": rates}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")), indent=1))
