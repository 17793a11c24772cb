"""Model bundles: create -> info -> load -> analyze (folder, zip, fp16), tampering, compatibility."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import Trained

from braintumor.bundle.create import create_bundle
from braintumor.bundle.load import bundle_info, default_bundle_path, load_bundle
from braintumor.bundle.store import BundleError, sha256_file
from braintumor.inference.analyzer import Analyzer


def test_round_trip_folder(trained: Trained, tmp_path: Path) -> None:
    path = create_bundle(trained.seg, trained.cls, tmp_path / "b", gate=trained.gate, name="tiny",
                         command="braintumor train ...", data="phantoms 32 px")  # fmt: skip
    info = bundle_info(path)
    assert info["verified"] and info["name"] == "tiny" and info["expansion"] == 1.5
    assert info["training_command"] == "braintumor train ..." and info["data"] == "phantoms 32 px"
    assert set(info["models"]) == {"seg", "cls", "gate"}
    assert "dice_per_patient_mean" in info["models"]["seg"]["metrics"]
    assert "per_class" not in info["models"]["cls"]["metrics"]  # headline numbers only
    manifest = json.loads((path / "manifest.json").read_text())["files"]
    weights = {f"{r}.{e}" for r in ("seg", "cls", "gate") for e in ("json", "safetensors")}
    assert set(manifest) == {"bundle.json", *weights}
    assert all(manifest[f] == sha256_file(path / f) for f in manifest)
    result = Analyzer.from_bundle(path).analyze(trained.images(1)[0])
    assert result.ok and result.tumour is not None and result.label is not None


def test_zip_and_fp16(trained: Trained, tmp_path: Path) -> None:
    fp32 = create_bundle(trained.seg, trained.cls, tmp_path / "b32")
    fp16 = create_bundle(trained.seg, trained.cls, tmp_path / "b16", fp16=True, zip_output=True)
    assert fp16.suffix == ".zip" and zipfile.is_zipfile(fp16)
    size32 = (fp32 / "seg.safetensors").stat().st_size
    with zipfile.ZipFile(fp16) as z:
        size16 = z.getinfo("seg.safetensors").file_size
    assert size16 < 0.6 * size32
    b16 = load_bundle(fp16)
    assert b16.info["dtype"] == "float16"
    for role in ("seg", "cls"):
        for p in b16.models[role].net.parameters():
            assert p.dtype == torch.float32
    image = trained.images(1)[0]
    r32 = Analyzer.from_bundle(fp32, precision="fp32").analyze(image)
    r16 = Analyzer.from_bundle(fp16, precision="fp32").analyze(image)
    assert r16.ok and r16.tumour == r32.tumour
    for k, v in r32.probabilities.items():
        assert abs(r16.probabilities[k] - v) < 0.02


def test_fp16_keeps_out_of_range_tensors_float32(trained: Trained, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    run = Path(shutil.copytree(trained.seg, tmp_path / "seg"))
    weights = run / "checkpoints" / "best.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("running_var"))
    state[key] = state[key] + 1e6  # a BatchNorm variance beyond float16's 65504
    save_file(state, str(weights))
    bundle = create_bundle(run, trained.cls, tmp_path / "b16", fp16=True)
    stored = load_file(str(bundle / "seg.safetensors"))
    assert stored[key].dtype == torch.float32 and torch.equal(stored[key], state[key])
    assert all(v.dtype == torch.float16 for k, v in stored.items() if k != key and v.is_floating_point())
    meta = json.loads((bundle / "seg.json").read_text())
    assert meta["stored_dtype"] == "float16+float32" and meta["float32_tensors"] == [key]
    net = load_bundle(bundle).models["seg"].net
    assert torch.equal(dict(net.named_buffers())[key], state[key])


def test_damaged_zip_member_is_named(trained: Trained, tmp_path: Path) -> None:
    archive = create_bundle(trained.seg, None, tmp_path / "b", zip_output=True)
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo("seg.safetensors")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])  # a disk error
    archive.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"b\.zip:seg\.safetensors: cannot extract"):
        load_bundle(archive)


def test_zip_with_top_folder(trained: Trained, tmp_path: Path) -> None:
    archive = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in trained.bundle.iterdir():
            z.write(f, f"t1ce/{f.name}")
    assert load_bundle(archive, load_onnx=True).has_onnx


def test_tampered_file_is_named(bundle_copy: Path) -> None:
    weights = bundle_copy / "cls.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"cls\.safetensors: sha256 does not match"):
        load_bundle(bundle_copy)


def test_tampered_metadata_is_named(bundle_copy: Path) -> None:
    meta = bundle_copy / "seg.json"
    meta.write_text(meta.read_text().replace('"image_size": 32', '"image_size": 64'))
    with pytest.raises(BundleError, match=r"seg\.json: sha256"):
        load_bundle(bundle_copy)


def test_missing_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / "gate.safetensors").unlink()
    with pytest.raises(BundleError, match=r"gate\.safetensors: file missing"):
        load_bundle(bundle_copy)


def test_missing_manifest_and_not_a_bundle(tmp_path: Path, bundle_copy: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nothing")
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: file missing"):
        load_bundle(bundle_copy)
    not_zip = tmp_path / "b.zip"
    not_zip.write_bytes(b"PK no zip")
    with pytest.raises(BundleError, match="not a zip"):
        load_bundle(not_zip)


def test_onnx_missing_is_explained(trained: Trained, tmp_path: Path) -> None:
    path = create_bundle(trained.seg, trained.cls, tmp_path / "b")
    with pytest.raises(BundleError, match="braintumor export"):
        Analyzer.from_bundle(path, backend="onnx")


def test_incompatible_models_refused(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="whole-slice classifier"):
        create_bundle(trained.seg, trained.gate, tmp_path / "a")
    with pytest.raises(BundleError, match="gate must classify whole slices"):
        create_bundle(trained.seg, trained.cls, tmp_path / "b", gate=trained.cls)
    with pytest.raises(BundleError, match="must be a segmentation model"):
        create_bundle(trained.cls, trained.cls, tmp_path / "c")
    other = Path(shutil.copytree(trained.cls, tmp_path / "cls3", ignore=shutil.ignore_patterns("phantoms")))
    meta_path = other / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["in_channels"] = 3
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="different input channels"):
        create_bundle(trained.seg, other, tmp_path / "d")
    assert not any(p.name in "abcd" for p in tmp_path.iterdir())  # nothing half-written


def test_weights_that_do_not_fit_are_refused(trained: Trained, tmp_path: Path) -> None:
    other = Path(shutil.copytree(trained.seg, tmp_path / "seg2", ignore=shutil.ignore_patterns("phantoms")))
    meta_path = other / "checkpoints" / "best.json"
    meta = json.loads(meta_path.read_text())
    meta["model"]["kwargs"] = {"init_features": 8}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="weights do not fit"):
        create_bundle(other, trained.cls, tmp_path / "b")


def test_existing_output_needs_overwrite(trained: Trained, tmp_path: Path) -> None:
    create_bundle(trained.seg, trained.cls, tmp_path / "b")
    with pytest.raises(BundleError, match="already exists"):
        create_bundle(trained.seg, trained.cls, tmp_path / "b")
    create_bundle(trained.seg, trained.cls, tmp_path / "b", overwrite=True, name="again")
    assert load_bundle(tmp_path / "b").name == "again"
    assert not list(tmp_path.glob(".b*"))  # the replaced bundle and the staging folder are gone
    dotted = create_bundle(trained.seg, None, tmp_path / "t1ce-v1.5", zip_output=True)
    assert dotted.name == "t1ce-v1.5.zip" and load_bundle(dotted).name == "t1ce-v1.5"


def test_default_bundle_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BundleError, match="not a packaged bundle; choose one of t1ce, flair-lgg"):
        default_bundle_path("no-such-kind")
    monkeypatch.setattr("braintumor.bundle.load.resources.files", lambda _: tmp_path)  # no bundles
    with pytest.raises(BundleError, match=r"not installed.*--bundle"):
        default_bundle_path("t1ce")


def test_loading_never_unpickles(bundle_copy: Path) -> None:
    names = {p.name for p in bundle_copy.iterdir()}
    assert not any(n.endswith((".pt", ".pth", ".ckpt", ".pkl")) for n in names)
    assert np.all([n.endswith((".json", ".safetensors", ".onnx")) for n in names])
