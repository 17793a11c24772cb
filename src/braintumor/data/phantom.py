"""Seeded synthetic brain MRI slices with tumour masks: the embedded default dataset.

A phantom is an axial slice of an elliptical head: a bright scalp/marrow ring, a dark bone and CSF
band, grey matter with sulci, lobulated white matter, lateral ventricles, the frontal falx and a
few bright vessel dots (distractors present in every class), under a smooth bias field and
Rician noise. Tumours follow the four Kaggle classes:

* ``meningioma``: extra-axial, a lentiform/dome mass flattened against the inner skull surface,
  bright and homogeneous, with a thin CSF cleft.
* ``glioma``: intra-axial in one hemisphere, a lobulated thresholded random field, heterogeneous,
  sometimes with a dark necrotic core, inside a fuzzy bright oedema halo that is *not* in the mask.
* ``pituitary``: small and round at the midline near the skull base (lower-central region).
* ``notumor``: normal anatomy, empty mask.

Positions, sizes, contrasts, orientation and noise vary per patient. A patient is one anatomy
sampled at several slice positions ``z`` in [-1, 1]; the tumour swells and shrinks across them,
so edge slices of a tumour patient may have an empty mask, as in the LGG volumes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.special import expit

from braintumor.data.index import Sample, SampleIndex
from braintumor.errors import DataError
from braintumor.io_utils import atomic_write_json

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
DATASET = "phantom"
MARKER = "phantom.json"

_TISSUES = (
    *("scalp", "bone", "csf", "gm", "wm", "vessel"),
    *("oedema", "glioma", "necrosis", "meningioma", "pituitary"),
)
# Intensities per contrast: single (1 channel), pre-contrast T1, FLAIR, post-contrast T1.
_CONTRASTS = np.array(
    [  # single  pre   flair  post
        [0.80, 0.85, 0.55, 0.85],  # scalp / marrow
        [0.08, 0.08, 0.05, 0.08],  # cortical bone
        [0.12, 0.12, 0.08, 0.12],  # CSF
        [0.42, 0.42, 0.52, 0.42],  # grey matter
        [0.58, 0.58, 0.42, 0.58],  # white matter
        [0.85, 0.30, 0.20, 0.85],  # vessel
        [0.72, 0.40, 0.80, 0.44],  # oedema
        [0.80, 0.36, 0.88, 0.55],  # glioma core
        [0.25, 0.22, 0.62, 0.20],  # necrosis
        [0.90, 0.46, 0.58, 0.95],  # meningioma
        [0.88, 0.50, 0.52, 0.92],  # pituitary
    ],
    dtype=np.float32,
)


@dataclass(eq=False)
class Tumour:
    """Patient-level tumour geometry (normalised units: 1 = half the image side).

    ``position`` is in head-frame units (fractions of the head semi-axes) or, for a meningioma,
    the direction of its skull attachment. The tumour is largest at slice ``z0`` and vanishes
    beyond ``z0 ± rz``. ``fields`` are two smooth unit-variance fields mixed per slice.
    """

    kind: str
    position: tuple[float, float]
    radii: tuple[float, float]
    angle: float
    z0: float
    rz: float
    lobulation: float
    necrosis: float
    oedema: float
    edge: float
    texture: float
    fields: tuple[np.ndarray, np.ndarray]


@dataclass(eq=False)
class PhantomAnatomy:
    """Everything shared by the slices of one phantom patient."""

    label: str
    size: int
    channels: int
    centre: tuple[float, float]
    axes: tuple[float, float]
    angle: float
    skull: float
    ventricles: float
    values: np.ndarray  # len(_TISSUES) × channels
    noise: float
    bias: np.ndarray  # H×W multiplicative field
    white_matter: tuple[np.ndarray, np.ndarray]  # fields shaping the grey/white boundary
    sulci: tuple[np.ndarray, np.ndarray]  # fields whose zero crossings are the sulci
    tumour: Tumour | None


def _field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean, unit variance: H×W float64."""
    f = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (f - f.mean()) / max(float(f.std()), 1e-8)


def _pair(rng: np.random.Generator, size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    return _field(rng, size, sigma), _field(rng, size, sigma)


def _mix(pair: tuple[np.ndarray, np.ndarray], z: float) -> np.ndarray:
    """A unit-variance field that changes smoothly with the slice position ``z``."""
    t = z * np.pi / 3
    return np.cos(t) * pair[0] + np.sin(t) * pair[1]


def _check(label: str, size: int, channels: int) -> None:
    if label not in CLASSES:
        raise ValueError(f"unknown phantom label {label!r}; expected one of {CLASSES}")
    if size < 16:
        raise ValueError(f"phantom size={size} is too small; use 32 or more")
    if channels not in (1, 3):
        raise ValueError(f"phantom channels={channels}; expected 1 (grayscale) or 3 (LGG-like)")


def _sample_tumour(rng: np.random.Generator, label: str, size: int) -> Tumour:
    floor = 2.5 / (size / 2)  # at least 2.5 px radius, whatever the image size
    pos: tuple[float, float]
    if label == "meningioma":
        phi = rng.uniform(0, 2 * np.pi)
        pos, r = (np.cos(phi), np.sin(phi)), rng.uniform(0.09, 0.2)
        radii = (r, r * rng.uniform(1.0, 1.8))  # radial × tangential: round to lentiform
        angle, lob, edge, tex = phi, rng.uniform(0.0, 0.08), rng.uniform(0.6, 1.2), 0.04
    elif label == "glioma":
        side = rng.choice([-1.0, 1.0])
        pos = (side * rng.uniform(0.18, 0.5), rng.uniform(-0.5, 0.4))
        r = rng.uniform(0.12, 0.26)
        radii = (r, r * rng.uniform(0.7, 1.3))
        angle, lob, edge, tex = rng.uniform(0, np.pi), rng.uniform(0.15, 0.35), rng.uniform(0.8, 1.6), 0.18
    else:  # pituitary
        pos = (rng.normal(0.0, 0.03), rng.uniform(0.42, 0.6))
        r = rng.uniform(0.07, 0.13)
        radii = (r, r * rng.uniform(0.8, 1.2))
        angle, lob, edge, tex = rng.uniform(0, np.pi), rng.uniform(0.0, 0.06), 0.8, 0.05
    radii = (max(radii[0], floor), max(radii[1], floor))
    glioma = label == "glioma"
    return Tumour(
        kind=label,
        position=(float(pos[0]), float(pos[1])),
        radii=(float(radii[0]), float(radii[1])),
        angle=float(angle),
        z0=float(rng.uniform(-0.3, 0.3)),
        rz=float(rng.uniform(0.45, 0.9)),
        lobulation=float(lob),
        necrosis=float(rng.uniform(0.3, 0.55)) if glioma and rng.random() < 0.6 else 0.0,
        oedema=float(rng.uniform(1.4, 2.1)) if glioma else 0.0,
        edge=float(edge),
        texture=tex,
        fields=_pair(rng, size, size / 16),
    )


def sample_anatomy(rng: np.random.Generator, label: str, size: int = 64, channels: int = 1) -> PhantomAnatomy:
    """Draw one phantom patient: head shape, contrasts, noise, bias field and tumour."""
    _check(label, size, channels)
    columns = [0] if channels == 1 else [1, 2, 3]
    values = _CONTRASTS[:, columns] * rng.uniform(0.92, 1.08, (len(_TISSUES), channels))
    wm = values[_TISSUES.index("wm")]
    for name in ("oedema", "glioma", "necrosis", "meningioma", "pituitary"):
        i = _TISSUES.index(name)  # tumour contrast from subtle to strong
        values[i] = wm + rng.uniform(0.55, 1.15) * (values[i] - wm)
    if channels == 3:  # low-grade gliomas enhance little and variably
        values[_TISSUES.index("glioma"), 2] = 0.45 + 0.4 * rng.uniform() ** 2
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    gx, gy = rng.normal(0, 0.08, 2)
    bias = np.exp(gx * xx + gy * yy + rng.uniform(0.04, 0.12) * _field(rng, size, size / 4))
    return PhantomAnatomy(
        label=label,
        size=size,
        channels=channels,
        centre=(float(rng.normal(0, 0.02)), float(rng.normal(0, 0.02))),
        axes=(float(rng.uniform(0.7, 0.8)), float(rng.uniform(0.84, 0.92))),
        angle=float(rng.normal(0, 0.08)),
        skull=float(rng.uniform(0.07, 0.11)),
        ventricles=float(rng.uniform(0.7, 1.3)),
        values=values.astype(np.float32),
        noise=float(rng.uniform(0.01, 0.035)),
        bias=bias,
        white_matter=_pair(rng, size, size / 12),
        sulci=_pair(rng, size, size / 24),
        tumour=None if label == "notumor" else _sample_tumour(rng, label, size),
    )


class _Canvas:
    """Per-channel painter: ``paint`` blends a tissue in with a soft membership ``alpha``."""

    def __init__(self, anatomy: PhantomAnatomy) -> None:
        self.values = anatomy.values
        self.image = np.zeros((anatomy.channels, anatomy.size, anatomy.size))

    def paint(self, alpha: np.ndarray, tissue: str, texture: np.ndarray | float = 0.0) -> None:
        value = self.values[_TISSUES.index(tissue)][:, None, None] * (1.0 + texture)
        self.image += alpha * (value - self.image)


def _soft(level: np.ndarray, scale_px: float, width_px: float) -> np.ndarray:
    """Membership ~1 where ``level`` < 1, falling off over ``width_px`` pixels at the boundary."""
    return expit((1.0 - level) * scale_px / width_px)


def _frame(anatomy: PhantomAnatomy, z: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Pixel coordinates rotated into the head frame (normalised units) and the slice's axes."""
    n = anatomy.size
    c = (np.arange(n) + 0.5) / n * 2 - 1
    y, x = np.meshgrid(c, c, indexing="ij")
    dx, dy = x - anatomy.centre[0], y - anatomy.centre[1]
    ca, sa = np.cos(anatomy.angle), np.sin(anatomy.angle)
    s = 1.0 - 0.12 * z**2  # the head is narrower towards the top and bottom slices
    return ca * dx + sa * dy, -sa * dx + ca * dy, anatomy.axes[0] * s, anatomy.axes[1] * s


def _draw_anatomy(cv: _Canvas, a: PhantomAnatomy, z: float, rng: np.random.Generator) -> np.ndarray:
    """Paint head, brain and normal structures; return the brain membership (H×W)."""
    u, v, ax, ay = _frame(a, z)
    px = a.size / 2
    r = np.hypot(u / ax, v / ay)
    tex = 0.05 * _field(rng, a.size, 0.8)
    cv.paint(_soft(r, ax * px, 0.6), "scalp", tex)
    cv.paint(_soft(r / (1 - 0.45 * a.skull), ax * px, 0.5), "bone")
    cv.paint(_soft(r / (1 - 0.8 * a.skull), ax * px, 0.5), "csf")
    rb = r / (1 - a.skull)
    brain = _soft(rb, ax * px, 0.6)
    cv.paint(brain, "gm", tex)
    cv.paint(_soft(rb / (0.72 + 0.07 * _mix(a.white_matter, z)), ax * px, 1.0), "wm", tex)
    sulci = expit((0.18 - np.abs(_mix(a.sulci, z))) / 0.05) * expit((rb - 0.78) * 20)
    cv.paint(0.7 * sulci * brain, "csf")
    vs = a.ventricles * max(0.0, 1.0 - 0.8 * abs(z))
    for side in (-1.0, 1.0):
        if vs <= 0.05:
            break
        du, dv = u - side * 0.1 * ax, v + 0.06 * ay
        t = -side * 0.35  # frontal horns (top) closer together than the bodies
        a_, b_ = np.cos(t) * du + np.sin(t) * dv, -np.sin(t) * du + np.cos(t) * dv
        cv.paint(_soft(np.hypot(a_ / (0.05 * vs), b_ / (0.2 * vs)), 0.05 * vs * px, 0.6), "csf")
    falx = (np.abs(u) * px < 0.6) & (v < -0.35 * ay)
    cv.paint(0.7 * falx * brain, "csf")
    for _ in range(rng.poisson(1.2)):  # vessels: small bright dots, in every class
        cu, cvv = rng.uniform(-0.7, 0.7) * ax, rng.uniform(-0.7, 0.7) * ay
        rad = rng.uniform(0.7, 1.4) / px
        cv.paint(_soft(np.hypot(u - cu, v - cvv) / rad, rad * px, 0.5) * brain, "vessel")
    return brain


def _draw_tumour(
    cv: _Canvas, a: PhantomAnatomy, z: float, brain: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Paint the tumour of slice ``z``; return its core mask (uint8 H×W)."""
    empty = np.zeros((a.size, a.size), np.uint8)
    t = a.tumour
    if t is None:
        return empty
    u, v, ax, ay = _frame(a, z)
    px = a.size / 2
    f = np.sqrt(max(0.0, 1.0 - ((z - t.z0) / t.rz) ** 2))
    fo = np.sqrt(max(0.0, 1.0 - ((z - t.z0) / (1.3 * t.rz)) ** 2))  # oedema reaches further
    if t.kind == "meningioma":  # centre a little inside the inner skull surface
        inner = 1 - a.skull
        nu, nv = t.position[0] / ax, t.position[1] / ay
        norm = np.hypot(nu, nv)
        cu = inner * ax * t.position[0] - 0.5 * t.radii[0] * f * nu / norm
        cv_ = inner * ay * t.position[1] - 0.5 * t.radii[0] * f * nv / norm
    else:
        cu, cv_ = t.position[0] * ax, t.position[1] * ay
    ca, sa = np.cos(t.angle), np.sin(t.angle)
    p, q = ca * (u - cu) + sa * (v - cv_), -sa * (u - cu) + ca * (v - cv_)
    shape = np.clip(_mix(t.fields, z), -1.5, 1.5)
    geom = np.hypot(p / t.radii[0], q / t.radii[1])
    mean_px = 0.5 * (t.radii[0] + t.radii[1]) * px
    if t.oedema and fo > 0:
        level = geom / (t.oedema * fo) + 0.7 * t.lobulation * shape
        cv.paint(_soft(level, mean_px * t.oedema * fo, 2.0) * brain, "oedema")
    if f * min(t.radii) * px < 0.8:
        return empty
    level = geom / f + t.lobulation * shape
    alpha = _soft(level, mean_px * f, t.edge) * brain
    if t.kind == "meningioma":  # thin CSF cleft around the extra-axial mass
        cv.paint(0.6 * _soft(level / 1.15, mean_px * f, 0.8) * brain, "csf")
    cv.paint(alpha, t.kind, t.texture * _field(rng, a.size, 1.2))
    if t.necrosis:
        cv.paint(_soft(level / t.necrosis, mean_px * f * t.necrosis, 1.2) * alpha, "necrosis")
    return ((level < 1.0) & (brain > 0.5)).astype(np.uint8)


def make_phantom(
    rng: np.random.Generator,
    label: str,
    size: int = 64,
    channels: int = 1,
    anatomy: PhantomAnatomy | None = None,
    z: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic axial slice.

    Args:
        rng: source of all randomness (a new anatomy when ``anatomy`` is None; noise, texture).
        label: one of ``CLASSES``.
        size: image side in pixels.
        channels: 1 (grayscale, contrast-enhanced-T1-like) or 3 (pre-contrast, FLAIR, post-contrast).
        anatomy: the patient to slice; drawn from ``rng`` when None.
        z: slice position in [-1, 1]; defaults to the tumour centre (or 0 without a tumour).

    Returns:
        image float32 C×H×W in [0, 1] and mask uint8 H×W in {0, 1} (tumour core; oedema excluded).
    """
    _check(label, size, channels)
    if anatomy is None:
        anatomy = sample_anatomy(rng, label, size, channels)
    elif (anatomy.label, anatomy.size, anatomy.channels) != (label, size, channels):
        raise ValueError(
            f"anatomy is for ({anatomy.label}, size {anatomy.size}, {anatomy.channels} ch) but "
            f"({label}, size {size}, {channels} ch) was asked; pass matching arguments"
        )
    if z is None:
        z = anatomy.tumour.z0 if anatomy.tumour else 0.0
    canvas = _Canvas(anatomy)
    brain = _draw_anatomy(canvas, anatomy, z, rng)
    mask = _draw_tumour(canvas, anatomy, z, brain, rng)
    img = canvas.image * anatomy.bias
    n1, n2 = rng.standard_normal((2, *img.shape)) * anatomy.noise
    img = np.sqrt((img + n1) ** 2 + n2**2)  # Rician noise
    high = np.quantile(img.reshape(channels, -1), 0.99, axis=1)[:, None, None]
    img = np.clip(img * (0.85 / np.maximum(high, 1e-6)), 0.0, 1.0)
    return img.astype(np.float32), mask


def slice_positions(anatomy: PhantomAnatomy, n_slices: int) -> list[float]:
    """Evenly spaced ``z`` in [-1, 1] (3+ slices), or slices around the tumour centre (1–2)."""
    if n_slices >= 3:
        return [float(z) for z in np.linspace(-1.0, 1.0, n_slices)]
    z0 = anatomy.tumour.z0 if anatomy.tumour else 0.0
    return [z0] if n_slices == 1 else [z0 - 0.2, z0 + 0.2]


def make_patient(
    rng: np.random.Generator, label: str, n_slices: int = 6, size: int = 64, channels: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive slices of one phantom patient: a list of (image C×H×W, mask H×W) pairs.

    A tumour patient always has at least one non-empty mask; the outermost slices usually miss
    the tumour.
    """
    if n_slices < 1:
        raise ValueError(f"n_slices={n_slices}; a patient needs at least one slice")
    anatomy = sample_anatomy(rng, label, size, channels)
    return [make_phantom(rng, label, size, channels, anatomy, z) for z in slice_positions(anatomy, n_slices)]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _write_slice(
    images: Path, masks: Path, sid: str, image: np.ndarray, mask: np.ndarray
) -> tuple[Path, Path]:
    if image.shape[0] == 1:
        img_path = images / f"{sid}.png"
        Image.fromarray(_to_uint8(image[0]), mode="L").save(img_path)
    else:
        import tifffile

        img_path = images / f"{sid}.tif"
        tifffile.imwrite(img_path, _to_uint8(np.moveaxis(image, 0, -1)), photometric="rgb")
    mask_path = masks / f"{sid}_mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(mask_path)
    return img_path, mask_path


def _params(
    n_patients: int, slices: int, size: int, channels: int, seed: int, classes: Sequence[str]
) -> dict[str, object]:
    """The generation parameters, as saved in ``phantom.json``."""
    return dict(
        n_patients=n_patients, slices_per_patient=slices, size=size, channels=channels, seed=seed,
        classes=list(classes),
    )  # fmt: skip


def generate_phantoms(
    out_dir: str | Path,
    n_patients: int = 40,
    slices_per_patient: int = 6,
    size: int = 64,
    channels: int = 1,
    seed: int = 0,
    classes: Sequence[str] = CLASSES,
) -> SampleIndex:
    """Write a phantom dataset and return its index (also saved as ``out_dir/index.csv``).

    Layout: ``images/PH0007_3.png`` (``.tif`` H×W×3 uint8 when ``channels == 3``),
    ``masks/PH0007_3_mask.png`` ({0, 255}), ``index.csv`` and ``phantom.json`` (the parameters).
    Patients cycle through ``classes`` (balanced to within one) in a seeded order; each patient
    draws from its own child of ``np.random.SeedSequence(seed)``, so the output is byte-identical
    for a given seed. Files of an earlier, larger set in ``out_dir`` are left in place but are
    not in the index.
    """
    classes = list(classes)
    if not classes or any(c not in CLASSES for c in classes):
        raise ValueError(f"phantom classes {classes} must be a non-empty subset of {CLASSES}")
    if n_patients < 1:
        raise ValueError(f"n_patients={n_patients}; generate at least one patient")
    out = Path(out_dir)
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    order_seq, *patient_seqs = np.random.SeedSequence(seed).spawn(n_patients + 1)
    labels = [classes[i % len(classes)] for i in range(n_patients)]
    labels = [labels[i] for i in np.random.default_rng(order_seq).permutation(n_patients)]
    samples = []
    for i, (label, ss) in enumerate(zip(labels, patient_seqs, strict=True)):
        slices = make_patient(np.random.default_rng(ss), label, slices_per_patient, size, channels)
        for j, (image, mask) in enumerate(slices, 1):
            sid = f"PH{i:04d}_{j}"
            img_path, mask_path = _write_slice(out / "images", out / "masks", sid, image, mask)
            row = (DATASET, sid, f"PH{i:04d}", label, classes.index(label))
            samples.append(Sample(*row, str(img_path.resolve()), str(mask_path.resolve()), j))
    params = _params(n_patients, slices_per_patient, size, channels, seed, classes)
    index = SampleIndex.from_samples(samples, classes, extra={"phantom": params})
    index.save(out / "index.csv")
    atomic_write_json(out / MARKER, params)
    return index


def is_phantom_folder(path: str | Path) -> bool:
    """True for a folder written by :func:`generate_phantoms` (``index.csv`` + ``phantom.json``)."""
    path = Path(path)
    return path.is_dir() and (path / "index.csv").is_file() and (path / MARKER).is_file()


def load_phantoms(path: str | Path) -> SampleIndex:
    """Read the index of a phantom folder written by :func:`generate_phantoms`."""
    path = Path(path)
    if not (path / "index.csv").is_file():
        raise DataError(
            path,
            "no index.csv: not a phantom folder; create one with "
            "braintumor.data.phantom.generate_phantoms(out_dir) or point at another dataset",
        )
    index = SampleIndex.load(path / "index.csv")
    if (path / MARKER).is_file():
        index.extra["phantom"] = json.loads((path / MARKER).read_text())
    return index


def ensure_phantoms(
    out_dir: str | Path,
    n_patients: int = 40,
    slices_per_patient: int = 6,
    size: int = 64,
    channels: int = 1,
    seed: int = 0,
    classes: Sequence[str] = CLASSES,
) -> SampleIndex:
    """Load the phantoms in ``out_dir`` if they were made with these parameters, else generate."""
    out = Path(out_dir)
    if is_phantom_folder(out):
        index = load_phantoms(out)
        if index.extra.get("phantom") == _params(
            n_patients, slices_per_patient, size, channels, seed, classes
        ):
            return index
    return generate_phantoms(out, n_patients, slices_per_patient, size, channels, seed, classes)
