"""Export a bundle's networks to ONNX (``<role>.onnx`` beside the weights, dynamic batch axis).

Uses the TorchScript-based ``torch.onnx.export(..., dynamo=False)``: the dynamo exporter needs
the optional ``onnxscript`` package, and the legacy one exports these CNNs exactly (checked by
the parity tests). The manifest is rewritten with the new hashes.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from braintumor.bundle.load import load_bundle
from braintumor.bundle.store import BundleError, add_to_manifest
from braintumor.extras import require
from braintumor.io_utils import atomic_write

OPSET = 17


def onnx_bytes(net: nn.Module, in_channels: int, size: int) -> bytes:
    """Serialise a float32 eval-mode network taking B×C×S×S input to ONNX with a dynamic batch.

    Raises:
        MissingExtraError: the ``onnx`` package (``braintumor[onnx]``), which the exporter needs, is absent.
    """
    require("onnx", "onnx", "exporting networks to ONNX")
    net = net.float().eval().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    dummy = torch.zeros(2, in_channels, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
        torch.onnx.export(
            net,
            (dummy,),
            buffer,  # type: ignore[arg-type]  # file-like objects are accepted
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def export_onnx(path: str | Path) -> list[Path]:
    """Write ``<role>.onnx`` for each network the bundle holds (``seg``, and ``cls`` / ``gate`` when
    present) into a bundle folder; update the manifest.

    Raises:
        BundleError: the bundle does not verify, or is a zip (export into the folder, then zip).
        MissingExtraError: the ``onnx`` package is absent (``pip install 'braintumor[onnx]'``).
    """
    require("onnx", "onnx", "braintumor export --format onnx")  # before the bundle is loaded
    path = Path(path)
    if path.is_file():
        raise BundleError(f"{path}: cannot export into a zip bundle; export the bundle folder, then zip it")
    bundle = load_bundle(path)
    written = []
    for role, model in bundle.models.items():
        data = onnx_bytes(model.net, model.in_channels, model.prep.image_size)
        target = path / f"{role}.onnx"

        def write(tmp: Path, data: bytes = data) -> None:
            tmp.write_bytes(data)

        atomic_write(target, write)
        written.append(target)
    add_to_manifest(path, [p.name for p in written])
    return written
