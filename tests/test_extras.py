"""Optional extras: a missing package names itself, what needed it and ``pip install 'braintumor[<extra>]'``;
nothing a training-only install lacks is imported by the CLI, training or a torch analysis.

A missing package is simulated with ``sys.modules[name] = None`` (``import name`` then raises ImportError).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.data.volumes import read_dicom
from braintumor.errors import BrainTumorError, MissingExtraError
from braintumor.extras import available, require
from braintumor.inference.backends import TorchBackend, make_backend

REPO = Path(__file__).resolve().parents[1]
EXTRAS = {
    "serve": ("fastapi", "uvicorn", "python_multipart"),
    "onnx": ("onnx", "onnxruntime"),
    "openvino": ("openvino",),
    "dicom": ("pydicom", "highdicom"),
}
runner = CliRunner()


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _fix(extra: str) -> str:
    return f"pip install 'braintumor[{extra}]'"


def _bundle(onnx: bool = True) -> Any:
    """A stand-in bundle with one tiny network (make_backend reads ``models``, ``has_onnx``, ``path``)."""
    model = SimpleNamespace(net=nn.Conv2d(1, 1, 1), onnx=b"onnx bytes" if onnx else None)
    return SimpleNamespace(models={"seg": model}, has_onnx=onnx, path=Path("bundle"))


def test_require_returns_the_module_or_names_package_extra_and_purpose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert require("json", "serve", "x") is json
    _missing(monkeypatch, "python_multipart", "python_multipart.multipart")  # even if imported before
    with pytest.raises(MissingExtraError) as caught:
        require("python_multipart.multipart", "serve", "reading uploads")
    err = caught.value
    assert isinstance(err, BrainTumorError)
    assert (err.package, err.extra, err.purpose) == ("python-multipart", "serve", "reading uploads")
    assert str(err) == (
        "reading uploads needs the package 'python-multipart', which is not installed; "
        f"install it with: {_fix('serve')}"
    )
    assert not available("python_multipart") and available("json")


def test_serve_cli_without_fastapi_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "fastapi")
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.startswith("error: braintumor serve needs the package 'fastapi'")
    assert _fix("serve") in message and "Traceback" not in message and len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("backend", "module", "extra"), [("onnx", "onnxruntime", "onnx"), ("openvino", "openvino", "openvino")]
)
def test_explicit_backend_without_its_package(
    monkeypatch: pytest.MonkeyPatch, backend: str, module: str, extra: str
) -> None:
    _missing(monkeypatch, module)
    with pytest.raises(MissingExtraError, match=f"'{module}'.*" + re.escape(_fix(extra))):
        make_backend(_bundle(), backend)


def test_openvino_backend_without_onnx_to_export_with(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "onnx")
    with pytest.raises(MissingExtraError, match=r"OpenVINO backend.*'onnx'.*braintumor\[openvino\]"):
        make_backend(_bundle(onnx=False), "openvino")


@pytest.mark.parametrize("blocked", [("openvino",), ("onnx",)])
def test_auto_backend_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch, blocked: tuple[str, ...]) -> None:
    """Without openvino, or without onnx to export a bundle that has no ONNX files: torch, silently."""
    _missing(monkeypatch, *blocked)
    backend = make_backend(_bundle(onnx=False), "auto", "fp32")
    assert isinstance(backend, TorchBackend)


def test_export_without_onnx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _missing(monkeypatch, "onnx")
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 1
    assert "'onnx'" in result.output and _fix("onnx") in result.output


def test_reading_dicom_without_pydicom(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dcm = tmp_path / "scans" / "slice.dcm"
    dcm.parent.mkdir()
    dcm.write_bytes(b"\0" * 128 + b"DICM")
    _missing(monkeypatch, "pydicom")
    with pytest.raises(
        MissingExtraError, match=r"slice\.dcm needs the package 'pydicom'.*braintumor\[dicom\]"
    ):
        read_dicom([dcm], 10**6, 10)
    # a DICOM folder stops `braintumor analyze` before any model is loaded, with one line
    result = runner.invoke(app, ["analyze", str(dcm.parent), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert (
        "'pydicom'" in result.output and _fix("dicom") in result.output and "Traceback" not in result.output
    )


def test_dicom_seg_without_highdicom_stops_before_any_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png = tmp_path / "slice.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png)
    _missing(monkeypatch, "highdicom")
    missing_bundle = tmp_path / "no-bundle"  # never loaded: the check comes first
    result = runner.invoke(app, ["analyze", str(png), "--bundle", str(missing_bundle), "--out",
                                 str(tmp_path / "out"), "--dicom-seg"])  # fmt: skip
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and message.startswith(
        "error: --dicom-seg (DICOM SEG files) needs the package"
    )
    assert "'highdicom'" in message and _fix("dicom") in message and "Traceback" not in message


def test_cli_and_analyzer_import_no_extra() -> None:
    """Importing the CLI and the analyzer pulls in no extra (pydicom aside: monai imports nibabel,
    which imports pydicom when it is installed; the next test runs without it)."""
    code = (
        "import json, sys, braintumor.cli, braintumor.inference.analyzer, braintumor.training.runner; "
        f"print(json.dumps([m for m in {[m for ms in EXTRAS.values() for m in ms]} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m != "pydicom"] == []
    code = "import sys, braintumor.cli; print('pydicom' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_analyze_png_without_any_extra(tmp_path: Path) -> None:
    """`braintumor analyze` of a PNG with the packaged bundle and backend auto, with every extra absent:
    torch, and no extra imported."""
    png = tmp_path / "slice.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(png)
    blocked = [m for ms in EXTRAS.values() for m in ms]
    code = (
        "import sys\n"
        f"for m in {blocked}: sys.modules[m] = None\n"
        "from braintumor.cli import app\n"
        f"args = ['analyze', {str(png)!r}, '--out', {str(tmp_path / 'out')!r}, '--json']\n"
        "try:\n    app(args)\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"assert not [m for m in {blocked} if sys.modules.get(m) is not None]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["backend"] == "torch" and summary["n_ok"] == 1
