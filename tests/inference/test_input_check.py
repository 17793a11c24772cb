"""The input check: what training slices look like is stored in a bundle; unlike inputs get a warning."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from inference_helpers import Trained

from braintumor.bundle.input_check import (
    FEATURES,
    PROFILE_FILE,
    InputProfile,
    add_profile,
    fit_profile,
    input_warning,
    profile_dataset,
    slice_features,
)
from braintumor.bundle.load import load_bundle
from braintumor.errors import BrainTumorError, DataError
from braintumor.inference.analyzer import Analyzer


def _photographs() -> list[np.ndarray]:
    import skimage.data as sd

    return [sd.astronaut(), sd.camera(), sd.coffee(), sd.chelsea(), sd.rocket(), sd.coins()]


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8), np.uint8),
        np.full((40, 30), 7, np.int16),
        np.arange(48, dtype=np.float32).reshape(4, 4, 3),
    ],
    ids=["black-8px", "constant-int16", "tiny-rgb"],
)
def test_features_are_finite_for_degenerate_slices(image: np.ndarray) -> None:
    features = slice_features(image)
    assert features.shape == (len(FEATURES),) and np.isfinite(features).all()


@pytest.fixture(scope="module")
def phantom_profile(trained: Trained) -> InputProfile:
    return profile_dataset(trained.phantoms, "phantoms")


def test_profile_passes_its_own_modality_and_flags_noise_and_photographs(
    phantom_profile: InputProfile, trained: Trained, tmp_path: Path
) -> None:
    from braintumor.data.phantom import generate_phantoms

    unseen = generate_phantoms(tmp_path / "unseen", n_patients=6, slices_per_patient=2, size=32, seed=99)
    from braintumor.data.readers import read_image

    passed = [
        input_warning(phantom_profile, read_image(p)[None], "image")[1] == "" for p in unseen.frame["image"]
    ]
    assert np.mean(passed) >= 0.8
    rng = np.random.default_rng(0)
    strange = [rng.integers(0, 256, (s, s), dtype=np.uint8) for s in (8, 32, 500)] + _photographs()
    for image in strange:
        distance, warning = input_warning(phantom_profile, image[None], "image")
        assert distance > phantom_profile.threshold and "does not look like the phantoms slices" in warning
    volume = rng.normal(size=(20, 32, 32)).astype(np.float32)
    assert input_warning(phantom_profile, volume, "volume")[1].startswith("this volume's slices do not")


def test_threshold_is_the_held_out_quantile() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, len(FEATURES)))
    profile = fit_profile(features, [str(i // 4) for i in range(400)], "gaussian", quantile=0.9)
    fresh = rng.normal(size=(2000, len(FEATURES)))
    assert 0.03 < float((profile.distance(fresh) > profile.threshold).mean()) < 0.2


def test_profile_round_trip_and_bad_bytes(phantom_profile: InputProfile, tmp_path: Path) -> None:
    phantom_profile.save(tmp_path / PROFILE_FILE)
    again = InputProfile.from_bytes((tmp_path / PROFILE_FILE).read_bytes())
    sample = phantom_profile.reference[:3] * phantom_profile.scale + phantom_profile.centre
    assert np.allclose(again.distance(sample), phantom_profile.distance(sample), atol=1e-4)
    assert again.threshold == phantom_profile.threshold and again.source == "phantoms"
    with pytest.raises(DataError, match=r"b/input_profile\.safetensors: not a valid input profile"):
        InputProfile.from_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}", "b/input_profile.safetensors")


def test_bundle_with_a_profile_warns_in_results_and_refuses_a_tampered_one(
    bundle_copy: Path, analyzer: Analyzer, phantom_profile: InputProfile, trained: Trained, tmp_path: Path
) -> None:
    add_profile(bundle_copy, phantom_profile)
    loaded = load_bundle(bundle_copy)
    assert loaded.input_profile is not None
    checked = Analyzer(loaded, analyzer.backend, analyzer.settings)
    noise = np.random.default_rng(2).integers(0, 256, (64, 64), dtype=np.uint8)
    flagged, plain = checked.analyze(noise), checked.analyze(trained.images(1)[0])
    assert flagged.to_dict()["warning"] and flagged.input_distance is not None
    assert plain.warning == "" and analyzer.analyze(noise).warning == ""  # no profile, no check
    (bundle_copy / PROFILE_FILE).write_bytes((bundle_copy / PROFILE_FILE).read_bytes()[:-4] + b"\x00" * 4)
    with pytest.raises(BrainTumorError, match="input_profile"):
        load_bundle(bundle_copy)
    with pytest.raises(DataError, match="not a bundle folder"):
        add_profile(tmp_path, phantom_profile)


@pytest.mark.realdata
def test_packaged_t1ce_bundle_flags_noise_not_a_real_slice(shared_data: Path, tmp_path: Path) -> None:
    from braintumor.bundle.load import default_bundle_path

    profile = load_bundle(default_bundle_path("t1ce")).input_profile
    assert profile is not None and profile.source == "figshare T1-CE"
    from braintumor.data.readers import read_image

    real = read_image(shared_data / "figshare" / "images" / "1011.png")
    assert input_warning(profile, real[None], "image")[1] == ""
    noise = np.random.default_rng(3).integers(0, 256, (4000 // 10, 4000 // 10), dtype=np.uint8)
    assert input_warning(profile, noise[None], "image")[1]
    shutil.rmtree(tmp_path, ignore_errors=True)
