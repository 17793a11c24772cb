"""Zip uploads: DICOM series (one result each), slice folders, and every refusal of an unsafe zip."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import warnings
import zipfile
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
import serve_files as files
from fastapi.testclient import TestClient
from PIL import Image
from serve_helpers import Served, decode, decode_png, error_of, make_client, upload

from braintumor.serve.archive import RATIO_FLOOR


def series_zip(served: Served, count: int = 3, folder: str = "", names: str = "IM{k:04d}") -> bytes:
    slices = [served.array(k) for k in range(count)]
    members = {f"{folder}{names.format(k=k)}": data for k, data in enumerate(files.dicom_series(slices))}
    return files.zipped(members)


def tumour_phantoms(served: Served, count: int) -> list[int]:
    """Phantom indices with a tumour in their ground-truth mask, so the tiny model finds one."""
    masks = sorted((served.phantoms / "masks").glob("*.png"))
    return [k for k, m in enumerate(masks) if np.asarray(Image.open(m)).any()][:count]


# ---------------------------------------------------------------- good zips


def test_dicom_series_zip(client: TestClient, served: Served) -> None:
    r = upload(client, series_zip(served, folder="patient/"), name="study.zip")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "zip" and body["kind"] == "archive" and body["input"] == "study.zip"
    assert set(body) >= {"model", "elapsed_ms"} and len(body["results"]) == 1
    result = body["results"][0]
    assert result["ok"] and result["kind"] == "volume" and result["format"] == "dicom"
    assert result["input"] == "study.zip/patient" and result["name"] == "patient"
    assert result["shape"] == [3, 32, 32] and result["spacing_mm"] == [0.5, 0.6, 3.0]
    assert [s["index"] for s in result["slices"]] == [0, 1, 2] and result["images_omitted"] == 0
    for s in result["slices"]:
        assert decode_png(s["images"]["image"]).shape == (256, 256, 3)
    nifti: Any = nib.Nifti1Image
    mask = nifti.from_bytes(gzip.decompress(decode(result["mask_nifti"])))
    assert mask.shape == (32, 32, 3) and np.allclose(np.diag(mask.affine)[:3], [-0.6, -0.5, 3.0])  # RAS
    assert "braintumor-serve-" not in r.text


def test_dicom_seg_returned_for_a_tumour(client: TestClient, served: Served) -> None:
    slices = [served.array(k) for k in tumour_phantoms(served, 3)]
    data = files.zipped({f"s{k}.dcm": d for k, d in enumerate(files.dicom_series(slices))})
    result = upload(client, data, name="tumour.zip").json()["results"][0]
    if not result["tumour"]:
        assert result["dicom_seg"] is None and any("no tumour found" in n for n in result["notes"])
        pytest.skip("the tiny model found no tumour in these phantoms")
    seg = pydicom.dcmread(io.BytesIO(decode(result["dicom_seg"])))
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == files.STUDY
    assert int(seg.NumberOfFrames) == len(result["tumour_slices"])
    off = upload(client, data, name="tumour.zip", dicom_seg="false").json()["results"][0]
    assert off["dicom_seg"] is None


def test_several_series_one_result_each(client: TestClient, served: Served) -> None:
    a, b = ([served.array(k) for k in ks] for ks in ((0, 1), (2, 3, 4)))
    members = {f"a{k}.dcm": d for k, d in enumerate(files.dicom_series(a))}
    members |= {f"b{k}.dcm": d for k, d in enumerate(files.dicom_series(b))}
    members |= {"__MACOSX/._a0.dcm": b"resource fork", ".DS_Store": b"\0\1", "notes/.hidden.dcm": b"x"}
    body = upload(client, files.zipped(members), name="two.zip").json()
    assert [(r["ok"], r["shape"][0]) for r in body["results"]] == [(True, 2), (True, 3)]
    assert {r["input"] for r in body["results"]} == {"two.zip/a0.dcm", "two.zip/b0.dcm"}
    for result in body["results"]:
        assert any(n.startswith("two.zip: holds 2 DICOM series") for n in result["notes"]), result["notes"]


def test_uid_named_dicom_files_and_numbered_slices(client: TestClient, served: Served) -> None:
    uid_named = series_zip(served, names="1.2.840.10008.{k}")  # a suffix ".0" that is no suffix
    result = upload(client, uid_named, name="uids.zip").json()["results"][0]
    assert result["format"] == "dicom" and result["shape"] == [3, 32, 32]
    slices = {f"case/case_{k + 1}.png": files.png(served.array(k)) for k in range(3)}
    result = upload(client, files.zipped(slices), name="slices.zip").json()["results"][0]
    assert result["kind"] == "volume" and result["format"] == "png" and result["shape"] == [3, 32, 32]
    assert result["mask_nifti"].startswith("data:application/gzip;base64,") and result["dicom_seg"] is None


def test_a_failed_input_among_good_ones(client: TestClient, served: Served) -> None:
    members = {"good.png": files.png(served.array()), "broken.png": b"\x89PNG\r\n\x1a\nnot really"}
    body = upload(client, files.zipped(members), name="mixed.zip").json()
    failed = next(r for r in body["results"] if not r["ok"])
    assert failed["input"] == "mixed.zip/broken.png" and failed["status"] == 422, failed
    assert "braintumor-serve-" not in failed["error"] and "mixed.zip/broken.png" in failed["error"]
    assert sum(r["ok"] for r in body["results"]) == 1


def test_slice_images_capped(served: Served) -> None:
    with make_client(served, max_slice_images=2) as client:
        result = upload(client, series_zip(served, count=4), name="cap.zip").json()["results"][0]
    shown = [s["index"] for s in result["slices"] if s["images"] is not None]
    assert len(shown) == 2 and result["images_omitted"] == 2 and result["slice_index"] in shown


# ---------------------------------------------------------------- refusals


def test_too_many_members(served: Served) -> None:
    with make_client(served, max_zip_members=2) as client:
        message = error_of(upload(client, series_zip(served), name="big.zip"), 413)
    assert "big.zip: the zip holds 3 files; the limit is 2" in message


def test_too_many_bytes_uncompressed(served: Served) -> None:
    with make_client(served, max_zip_mb=0.001) as client:
        message = error_of(upload(client, series_zip(served), name="big.zip"), 413)
    assert "bytes uncompressed, more than the limit of 1,000" in message


def test_bomb_ratio() -> None:
    from braintumor.serve.archive import ZipLimits, plan_zip

    bomb = files.zipped({"zeros.dcm": bytes(2 * RATIO_FLOOR)})
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf, pytest.raises(Exception) as caught:
        plan_zip(zf.infolist(), "bomb.zip", ZipLimits(10, 10**9))
    assert getattr(caught.value, "status", None) == 413 and "refused as a zip bomb" in str(caught.value)


def test_bomb_ratio_over_http(client: TestClient) -> None:
    message = error_of(upload(client, files.zipped({"zeros.dcm": bytes(2 * RATIO_FLOOR)}), name="b.zip"), 413)
    assert "member 'zeros.dcm' declares 2,097,152 bytes" in message and "zip bomb" in message


def _lying_sizes(data: bytes, declared: int) -> bytes:
    """The zip with its one member's uncompressed size set to ``declared`` in both headers."""
    raw = bytearray(data)
    local = raw.find(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, declared)
    central = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, declared)
    return bytes(raw)


def test_member_yielding_more_than_declared(client: TestClient) -> None:
    liar = _lying_sizes(files.zipped({"small.dcm": bytes(RATIO_FLOOR // 2)}), 1000)
    r = upload(client, liar, name="liar.zip")
    assert r.status_code in (413, 422), r.text
    assert "member 'small.dcm'" in r.json()["error"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:/scan/IM1.dcm", "absolute path"),
        ("series/../../IM1.dcm", "'..' component"),
        ("..\\IM1.dcm", "'..' component"),
        ("inner.zip", "zip inside the zip"),
        ("/".join(["d"] * 20) + "/IM1.dcm", "nested deeper"),
    ],
)
def test_unsafe_names(client: TestClient, name: str, problem: str) -> None:
    message = error_of(upload(client, files.zipped({name: b"data"}), name="evil.zip"), 422)
    assert message.startswith("evil.zip: member ") and problem in message


def _with_info(info: zipfile.ZipInfo, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(info, data)
    return buffer.getvalue()


def test_symlink_and_special_files(client: TestClient) -> None:
    link = zipfile.ZipInfo("IM1.dcm")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert "symbolic link" in error_of(upload(client, _with_info(link, b"/etc/passwd"), name="l.zip"), 422)
    fifo = zipfile.ZipInfo("pipe")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    assert "not a regular file" in error_of(upload(client, _with_info(fifo, b""), name="p.zip"), 422)


def test_encrypted_member(client: TestClient) -> None:
    raw = bytearray(files.zipped({"IM1.dcm": b"secret"}))
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags, bit 0
        at = raw.find(magic) + offset
        struct.pack_into("<H", raw, at, struct.unpack_from("<H", raw, at)[0] | 0x1)
    assert "is encrypted" in error_of(upload(client, bytes(raw), name="e.zip"), 422)


def test_nested_zip_found_by_content(client: TestClient, served: Served) -> None:
    inner = files.zipped({"IM1.dcm": files.dicom(served.array())})
    message = error_of(upload(client, files.zipped({"IM1.dcm": inner}), name="outer.zip"), 422)
    assert "member 'IM1.dcm' is a zip inside the zip" in message


def test_broken_empty_and_useless_zips(client: TestClient) -> None:
    assert "not a readable zip" in error_of(upload(client, b"PK\x03\x04" + bytes(200), name="x.zip"), 422)
    empty = files.zipped({})
    assert "holds no files to analyse" in error_of(upload(client, empty, name="empty.zip"), 422)
    hidden = files.zipped({"__MACOSX/._x": b"x", ".DS_Store": b"x", "dir/": b""})
    assert "holds no files to analyse" in error_of(upload(client, hidden, name="h.zip"), 422)
    text = error_of(upload(client, files.zipped({"README.txt": b"hello"}), name="t.zip"), 422)
    assert text.startswith("t.zip: folder holds no supported images"), text


def test_duplicate_names(client: TestClient) -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        zf.writestr("a.dcm", b"1")
        zf.writestr("a.dcm", b"2")
    assert "appears twice" in error_of(upload(client, buffer.getvalue(), name="dup.zip"), 422)


def test_pixels_of_all_images_together(served: Served) -> None:
    members = {f"img{k}.png": files.png(served.array(k)) for k in range(3)}  # 3 × 32 × 32 pixels
    with make_client(served, max_voxels=2 * 32 * 32) as client:
        message = error_of(upload(client, files.zipped(members), name="many.zip"), 413)
    assert "many.zip: the zip's images hold more than 2,048 pixels together" in message
