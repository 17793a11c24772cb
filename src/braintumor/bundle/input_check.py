"""Does an input look like the slices a bundle was trained on? An input-quality check.

Every slice is summarised by a few intensity, shape and texture statistics of its raw pixels
(:func:`slice_features`: colour, aspect ratio, head fraction, dark border, intensity histogram,
brightness from the head's outline to its centre, edges, high-frequency energy, left-right
symmetry). A bundle's :class:`InputProfile` holds those of its training slices; a slice's distance
is its mean distance to the nearest of them, and the threshold is the given quantile of the
distances of slices held out of the fit (grouped by patient), so that about ``1 - quantile`` of
unseen slices of the training modality are flagged (``scripts/input_check_rates.py``). A flagged
input is still analysed; its result carries a ``warning``. A volume is flagged when its median
slice distance is over the threshold (the first and last slices of a head are unusual anyway).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROFILE_FILE = "input_profile.safetensors"
Progress = Callable[[int, int], None]
_SIDE = 64
_BINS = 16
_RINGS = 4
FEATURES = (
    "log_aspect", "colour_spread", "head_fraction", "border_mean", "centre_mean",
    *(f"histogram_{i}" for i in range(_BINS)), *(f"ring_{i}" for i in range(_RINGS)),
    "edges", "high_frequency", "symmetry", "saturated", "dark",
)  # fmt: skip


def _gray_unit(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Grayscale in [0, 1] (1st-99th percentile) and the channels' mean spread in the same units."""
    array = np.asarray(image, np.float32)
    gray = array.mean(axis=-1) if array.ndim == 3 else array
    lo, hi = np.percentile(gray, (1.0, 99.0))
    scale = float(hi - lo) if hi > lo else 1.0
    spread = float(np.abs(array - gray[..., None]).mean()) / scale if array.ndim == 3 else 0.0
    return np.clip((gray - lo) / scale, 0.0, 1.0).astype(np.float32), spread


def _ring_means(small: np.ndarray, head: np.ndarray) -> list[float]:
    """Mean intensity in :data:`_RINGS` rings from the head's outline to its centre (scalp, cortex,
    white matter, core: their brightness order tells the contrast)."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(head)
    deepest = float(depth.max())
    if deepest <= 0:
        return [0.0] * _RINGS
    ring = np.minimum((depth / deepest * _RINGS).astype(int), _RINGS - 1)
    return [
        float(small[head & (ring == r)].mean()) if (head & (ring == r)).any() else 0.0 for r in range(_RINGS)
    ]


def slice_features(image: np.ndarray) -> np.ndarray:
    """The statistics of one raw slice (H×W or H×W×C, any dtype), float64 in :data:`FEATURES` order."""
    from PIL import Image
    from scipy.ndimage import laplace, sobel

    height, width = image.shape[:2]
    gray, spread = _gray_unit(image)
    small = np.asarray(
        Image.fromarray(gray, mode="F").resize((_SIDE, _SIDE), Image.Resampling.BOX), np.float32
    )
    head = small > 0.1
    border = np.concatenate(
        [small[:4].ravel(), small[-4:].ravel(), small[:, :4].ravel(), small[:, -4:].ravel()]
    )
    centre = small[_SIDE // 4 : -_SIDE // 4, _SIDE // 4 : -_SIDE // 4]
    inside = small[head] if head.any() else small.ravel()
    histogram = np.histogram(inside, bins=_BINS, range=(0.0, 1.0))[0] / max(inside.size, 1)
    edges = np.hypot(sobel(small, 0), sobel(small, 1))
    mirrored = small[:, ::-1]
    symmetry = np.corrcoef(small.ravel(), mirrored.ravel())[0, 1] if small.std() > 0 else 0.0
    values = [
        np.log(height / width), spread, head.mean(), border.mean(), centre.mean(), *histogram,
        *_ring_means(small, head),
        edges.mean(), np.abs(laplace(small)).mean() / (edges.mean() + 1e-3), symmetry,
        (gray >= 0.99).mean(), (gray <= 0.01).mean(),
    ]  # fmt: skip
    return np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=1e3, neginf=-1e3)


@dataclass(frozen=True)
class InputProfile:
    """What a bundle's training slices look like, and how far from them a slice may lie.

    ``reference`` holds the training slices' features (N×F float32) scaled by ``centre`` and
    ``scale`` (median and interquartile range per feature); a slice's distance is its mean
    Euclidean distance to its ``k`` nearest reference slices in that scaled space.
    """

    reference: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    threshold: float
    quantile: float
    source: str
    k: int = 10
    features: tuple[str, ...] = FEATURES

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Distance of each row of ``features`` (N×F, :func:`slice_features`) to the profile."""
        scaled = (np.atleast_2d(features) - self.centre) / self.scale
        out = np.empty(len(scaled))
        for start in range(0, len(scaled), 256):
            chunk = scaled[start : start + 256]
            squared = (
                (chunk**2).sum(1)[:, None] - 2 * chunk @ self.reference.T + (self.reference**2).sum(1)[None]
            )
            nearest = np.sqrt(np.maximum(np.partition(squared, self.k - 1, axis=1)[:, : self.k], 0.0))
            out[start : start + len(chunk)] = nearest.mean(axis=1)
        return out

    def save(self, path: Path) -> None:
        """Write as safetensors (arrays) with the scalars in its metadata, atomically."""
        from safetensors.numpy import save

        from braintumor.io_utils import atomic_write

        tensors = {"reference": self.reference.astype(np.float32), "centre": self.centre.astype(np.float32),
                   "scale": self.scale.astype(np.float32)}  # fmt: skip
        meta = {"threshold": repr(self.threshold), "quantile": repr(self.quantile), "source": self.source,
                "k": str(self.k), "features": json.dumps(list(self.features))}  # fmt: skip
        data = save(tensors, metadata=meta)

        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

        atomic_write(path, write)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = PROFILE_FILE) -> InputProfile:
        """Read a profile written by :meth:`save`; DataError naming ``where`` if it is not one."""
        from safetensors.numpy import load

        from braintumor.errors import DataError

        try:
            arrays = load(data)
            meta = _safetensors_metadata(data)
            profile = cls(arrays["reference"], arrays["centre"], arrays["scale"], float(meta["threshold"]),
                          float(meta["quantile"]), meta["source"], int(meta["k"]),
                          tuple(json.loads(meta["features"])))  # fmt: skip
        except Exception as exc:
            raise DataError(where, f"not a valid input profile ({type(exc).__name__}: {exc})") from None
        if profile.features != FEATURES or profile.reference.shape[1:] != (len(FEATURES),):
            raise DataError(where, "input profile was made with other features; remake it with this version")
        if not 1 <= profile.k <= len(profile.reference):
            raise DataError(where, f"k={profile.k} but {len(profile.reference)} reference slices")
        return profile


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    header_size = int.from_bytes(data[:8], "little")
    metadata: dict[str, str] = json.loads(data[8 : 8 + header_size]).get("__metadata__", {})
    return metadata


def _scaled_profile(rows: np.ndarray, threshold: float, quantile: float, source: str, k: int) -> InputProfile:
    centre = np.median(rows, axis=0)
    q75, q25 = np.percentile(rows, (75.0, 25.0), axis=0)
    scale = np.where(q75 - q25 > 1e-6, q75 - q25, rows.std(axis=0) + 1e-6)
    reference = ((rows - centre) / scale).astype(np.float32)
    return InputProfile(reference, centre, scale, threshold, quantile, source, k)


def fit_profile(
    features: np.ndarray, groups: Sequence[str], source: str, quantile: float = 0.99, k: int = 10
) -> InputProfile:
    """Fit a profile to N×F slice features; the threshold is the ``quantile`` of the distances of
    slices held out of the fit (5 folds over ``groups``, e.g. patients)."""
    from sklearn.model_selection import GroupKFold

    held_out = np.zeros(len(features))
    for train, test in GroupKFold(n_splits=5).split(features, groups=list(groups)):
        held_out[test] = _scaled_profile(features[train], 0.0, quantile, source, k).distance(features[test])
    return _scaled_profile(features, float(np.quantile(held_out, quantile)), quantile, source, k)


def input_warning(profile: InputProfile, slices: np.ndarray, kind: str, most: int = 16) -> tuple[float, str]:
    """(distance, warning) of an image (1 slice) or a volume (median over up to ``most`` evenly
    spaced slices); the warning is empty when the input looks like the profile's training slices."""
    picked = slices[np.unique(np.linspace(0, len(slices) - 1, min(most, len(slices))).round().astype(int))]
    distances = profile.distance(np.stack([slice_features(s) for s in picked]))
    distance = float(np.median(distances))
    if distance <= profile.threshold:
        return distance, ""
    what = "this volume's slices do not" if kind == "volume" else "this image does not"
    return distance, (
        f"{what} look like the {profile.source} slices the model was trained on (input distance "
        f"{distance:.1f} > {profile.threshold:.1f}); check the modality and that it is a brain MRI slice"
    )


def profile_dataset(
    data: str | Path, source: str, quantile: float = 0.99, progress: Progress | None = None
) -> InputProfile:
    """Fit a profile to every image of a dataset folder (any supported layout), grouped by patient."""
    from braintumor.data.loaders import load_dataset
    from braintumor.data.readers import read_image

    frame = load_dataset(data).frame
    rows = []
    for i, path in enumerate(frame["image"]):
        rows.append(slice_features(read_image(path)))
        if progress and ((i + 1) % 100 == 0 or i + 1 == len(frame)):
            progress(i + 1, len(frame))
    return fit_profile(np.stack(rows), [str(p) for p in frame["patient_id"]], source, quantile)


def add_profile(bundle_dir: Path, profile: InputProfile) -> None:
    """Store ``profile`` in a bundle folder and its manifest (a zip bundle is refused)."""
    from braintumor.bundle.store import add_to_manifest
    from braintumor.errors import DataError

    if not (bundle_dir / "manifest.json").is_file():
        raise DataError(bundle_dir, "not a bundle folder (no manifest.json); unzip a .zip bundle first")
    profile.save(bundle_dir / PROFILE_FILE)
    add_to_manifest(bundle_dir, [PROFILE_FILE])
