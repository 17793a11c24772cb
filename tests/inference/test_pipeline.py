"""The segment -> gate -> crop -> classify logic with a scripted backend (no model noise)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from braintumor.bundle.load import Bundle
from braintumor.data.preprocess import normalize_images, to_channels_first
from braintumor.data.roi import crop_roi
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.pipeline import AnalysisSettings
from braintumor.inference.results import AnalysisResult

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


class ScriptedBackend:
    """Segmenter: tumour where the input is bright (flip-equivariant). Classifiers: fixed logits."""

    name = "scripted"

    def __init__(self, gate: list[float], cls: list[float]) -> None:
        self.logits = {"gate": np.asarray(gate, np.float32), "cls": np.asarray(cls, np.float32)}
        self.inputs: dict[str, list[np.ndarray]] = {}

    def run(self, role: str, x: np.ndarray) -> np.ndarray:
        self.inputs.setdefault(role, []).append(x.copy())
        if role == "seg":
            return np.where(x[:, :1] > 0.5, 8.0, -8.0).astype(np.float32)
        return np.tile(self.logits[role], (len(x), 1))


def _image() -> np.ndarray:
    """40×56 uint8 slice (not square) with a bright 10×14 'tumour' at rows 10-20, cols 30-44."""
    image = (np.random.default_rng(0).random((40, 56)) * 40).astype(np.uint8)
    image[10:20, 30:44] = 250
    return image


def _run(
    bundle: Bundle, gate: list[float], cls: list[float], **settings: object
) -> tuple[AnalysisResult, ScriptedBackend]:
    backend = ScriptedBackend(gate, cls)
    analyzer = Analyzer(bundle, backend, AnalysisSettings.for_bundle(bundle, **settings))  # type: ignore[arg-type]
    return analyzer.analyze(_image(), spacing=(0.5, 0.5)), backend


def test_tumour_found_measured_and_cropped_like_training(bundle: Bundle) -> None:
    result, backend = _run(bundle, gate=[0, 0, -5, 0], cls=[2, 1, 5, 0], tta_flips=("none", "h"))
    assert result.ok and result.tumour
    mask = result.slices[0].mask
    assert mask is not None and mask.shape == (40, 56)
    assert abs(result.area_px - 140) <= 0.2 * 140 and result.area_mm2 == pytest.approx(result.area_px * 0.25)
    assert result.bbox is not None and np.allclose(result.bbox, (10, 20, 30, 44), atol=2)
    prep = bundle.models["cls"].prep
    native = normalize_images([to_channels_first(_image(), prep.channels)], prep.normalization,
                              prep.percentiles)[0]  # fmt: skip
    expected, _ = crop_roi(native, mask, bundle.expansion, prep.image_size)
    assert np.array_equal(backend.inputs["cls"][0][0], expected)  # the same crop the training cache made
    assert result.label == "glioma" and "notumor" not in result.probabilities  # ROI model's notumor dropped
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.uncertainty.segmentation == pytest.approx(0.0, abs=1e-9)  # the flips agree
    assert result.uncertainty.classification == pytest.approx(0.0, abs=1e-9)
    assert set(result.gate_probabilities) == set(CLASSES)


def test_single_view_reports_no_uncertainty(bundle: Bundle) -> None:
    result, backend = _run(bundle, gate=[0, 0, -5, 0], cls=[2, 1, 5, 0], tta_flips=("none",))
    assert result.tumour and len(backend.inputs["seg"][0]) == 1  # one view, not a flipped copy
    assert result.uncertainty.segmentation is None and result.uncertainty.classification is None
    assert result.slices[0].uncertainty.to_dict() == {"segmentation": None, "classification": None}


def test_gate_says_no_tumour(bundle: Bundle) -> None:
    result, backend = _run(bundle, gate=[0, 0, 6, 0], cls=[2, 1, 0, 0])
    assert result.ok and result.tumour is False and result.label == "notumor"
    assert result.area_px == 0 and result.bbox is None and result.probabilities == result.gate_probabilities
    assert "cls" not in backend.inputs  # nothing to classify
    mask = result.slices[0].mask
    assert mask is not None and not mask.any()


def test_gate_threshold_and_min_area(bundle: Bundle) -> None:
    lenient, _ = _run(bundle, gate=[0, 0, 6, 0], cls=[2, 1, 0, 0], gate_threshold=1.0)
    assert lenient.tumour
    small, _ = _run(bundle, gate=[0, 0, -5, 0], cls=[2, 1, 0, 0], min_area_px=1000)
    assert small.tumour is False and small.label == "notumor"


def test_settings_are_validated(bundle: Bundle) -> None:
    from braintumor.errors import ConfigError

    bad_settings = (
        {"gate_threshold": 0.0}, {"tta_flips": ("none", "diagonal")}, {"batch_size": 0},
        {"threshold": 1.0}, {"component_fraction": 1.5}, {"postprocess_scope": "volume"},
    )  # fmt: skip
    for bad in bad_settings:
        with pytest.raises(ConfigError):
            AnalysisSettings.for_bundle(bundle, **bad)
    with pytest.raises(ConfigError, match="unknown analysis setting"):
        AnalysisSettings.for_bundle(bundle, cutoff=0.3)
    defaults = AnalysisSettings.for_bundle(bundle, min_area_px=None)
    assert replace(defaults) == AnalysisSettings.for_bundle(bundle)
