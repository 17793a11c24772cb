"""Benchmark ``braintumor analyze``: slices per second of each backend vs the issue's reference.

Reference (as the analysis issue defines it): the classic LGG U-Net (``unet``, init_features=32,
7.8 M parameters, 256 px) in eager fp32, batch 1, one file at a time: read, normalise, resize,
segment. It is measured in the same run on the same files. A second, stricter reference is printed
beside it: the *same bundle* through the same pipeline done the naive way (eager fp32, batch 1,
no channels_last, no prefetching).

Candidates run the whole pipeline (segment with flip TTA -> gate -> ROI crop -> classify ->
post-process), batching slices across files with a background thread prefetching the next inputs:
torch ``auto`` (bf16 autocast + channels_last where the CPU has native bf16), torch fp32 +
channels_last, ONNX Runtime, and OpenVINO (bf16 inference precision where supported). No output
files are written unless ``--write``.

Usage:
    python benchmarks/analyze.py [--bundle B] [--data DIR] [--n 64] [--batch-size 32] [--threads N]

Default bundle: the packaged ``t1ce`` bundle when installed, else one with its architectures
trained on phantoms for 2 steps (speed does not depend on accuracy). Default inputs: the first
``--n`` figshare T1-CE slices of ../shared/data/figshare (LGG FLAIR TIFFs for a 3-channel bundle),
else 256 px phantoms. The last line printed is one JSON object with ``slices_per_s``,
``reference_slices_per_s`` and ``ratio`` for the best backend.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from braintumor.bundle.load import Bundle, default_bundle_path, load_bundle
from braintumor.bundle.store import BundleError, BundleReader
from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import OnnxBackend, OpenVinoBackend, TorchBackend, bf16_supported
from braintumor.inference.pipeline import AnalysisSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LGG = SHARED / "lgg" / "kaggle_3m"
FIGSHARE = SHARED / "figshare" / "images"
CLASSIC_SIZE = 256
BASE = ["data.image_size=128", "data.phantom_size=128", "data.phantom_count=48", "data.folds=3",
        "data.normalization=percentile-image", "data.channels=1", "train.batch_size=8",
        "train.precision=32-true", "train.epochs=1"]  # fmt: skip
RUNS = {
    "seg": ["model.name=unet", "model.kwargs={init_features: 16}"],
    "cls": [
        "train.task=classify",
        "model.name=resnet18",
        "model.kwargs={width: 24}",
        "train.loss=ce",
        "data.roi_expansion=1.5",
    ],
    "gate": ["train.task=classify", "model.name=resnet18", "model.kwargs={width: 24}", "train.loss=ce"],
}


def train_bundle(root: Path) -> Path:
    """Train the three runs for 2 steps each on 128 px phantoms and bundle them (with ONNX)."""
    from braintumor.bundle.create import create_bundle
    from braintumor.bundle.export import export_onnx
    from braintumor.config import load_config
    from braintumor.training.runner import train_fold

    quiet = {"enable_progress_bar": False, "max_steps": 2, "enable_checkpointing": True}
    for name, extra in RUNS.items():
        cfg = load_config(None, [*BASE, f"data.cache_dir={root / 'cache'}", *extra])
        train_fold(cfg, root / name, trainer_overrides=quiet)
    bundle = create_bundle(root / "seg", root / "cls", root / "bundle", gate=root / "gate", name="bench")
    export_onnx(bundle)
    return bundle


def with_onnx(path: Path, root: Path) -> Path:
    """The bundle itself if it holds ONNX models, else an exported copy under ``root``."""
    from braintumor.bundle.export import export_onnx

    if any(name.endswith(".onnx") for name in BundleReader(path).files):
        return path
    if path.is_file():
        raise SystemExit(f"{path}: a zip bundle without ONNX models; export its folder first")
    copy = Path(shutil.copytree(path, root / "bundle-onnx"))
    export_onnx(copy)
    return copy


def input_slices(folder: Path, n: int, channels: int) -> tuple[list[Path], str]:
    """``n`` slice files copied into ``folder``: figshare PNGs (1 channel) or LGG TIFFs (3), else
    phantom PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    if channels == 1 and FIGSHARE.is_dir():
        pngs = sorted(FIGSHARE.glob("*.png"))[:n]
        if len(pngs) == n:
            return [Path(shutil.copy(p, folder / p.name)) for p in pngs], str(FIGSHARE)
    if LGG.is_dir():
        tifs = sorted(p for p in LGG.glob("*/*.tif") if not p.name.endswith("_mask.tif"))[:n]
        if len(tifs) == n:
            return [Path(shutil.copy(p, folder / p.name)) for p in tifs], str(LGG)
    from braintumor.data.phantom import generate_phantoms

    index = generate_phantoms(folder / "phantoms", n_patients=-(-n // 8), slices_per_patient=8, size=256)
    return [Path(p) for p in index.frame["image"].tolist()[:n]], "phantoms 256 px"


def timed(analyzer: Analyzer, files: list[Path], one_by_one: bool, out: Path | None) -> float:
    """Seconds to analyse ``files`` (after a one-file warm-up)."""
    analyzer.analyze(files[0])
    start = time.perf_counter()
    if one_by_one:
        for k, path in enumerate(files):
            results = analyzer.analyze_files([path], out / str(k) if out else None)
            assert results[0].ok, results[0].error
    else:
        results = analyzer.analyze_files(files, out)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return time.perf_counter() - start


def classic_unet_seconds(files: list[Path], in_channels: int) -> float:
    """Seconds for the issue's reference: the classic U-Net (F=32, 256 px), eager fp32, batch 1,
    one file at a time (read, per-image percentile normalisation, pad + resize, segment, threshold)."""
    from braintumor.data.preprocess import normalize_images, resize_square, to_channels_first
    from braintumor.data.readers import read_image
    from braintumor.models import create_model

    net = create_model("unet", in_channels=in_channels, out_channels=1, init_features=32).eval()

    def one(path: Path) -> None:
        image = to_channels_first(read_image(path), in_channels)
        image = normalize_images([image], "percentile-image", (0.5, 99.5))[0]
        x, _ = resize_square(image, CLASSIC_SIZE)
        with torch.inference_mode():
            (net(torch.from_numpy(x)[None]) > 0).numpy()

    one(files[0])  # warm-up
    start = time.perf_counter()
    for path in files:
        one(path)
    return time.perf_counter() - start


def run(
    bundle: Bundle, files: list[Path], batch_size: int, write: Path | None, threads: int
) -> dict[str, Any]:
    base = AnalysisSettings.for_bundle(bundle)
    naive = replace(base, batch_size=1, prefetch=False)
    fast = replace(base, batch_size=batch_size, prefetch=True)
    nets = {role: m.net for role, m in bundle.models.items()}
    reference = classic_unet_seconds(files, bundle.models["seg"].in_channels)
    same_naive = Analyzer(bundle, TorchBackend(nets, "fp32", channels_last=False), naive)
    seconds = timed(same_naive, files, one_by_one=True, out=write and write / "naive")
    onnx = {r: m.onnx for r, m in bundle.models.items() if m.onnx}
    figures: dict[str, Any] = {}
    candidates = {
        "torch-auto": lambda: TorchBackend(nets, "auto"),
        "torch-fp32-channels-last": lambda: TorchBackend(nets, "fp32", channels_last=True),
        "onnx": lambda: OnnxBackend(onnx, threads),
        "openvino": lambda: OpenVinoBackend(onnx, "auto", threads),
    }
    for name, make in candidates.items():
        backend = make()
        analyzer = Analyzer(bundle, backend, fast)
        best = min(timed(analyzer, files, False, write and write / name) for _ in range(3))
        del analyzer  # release its thread pools before the next candidate
        figures[name] = {
            "slices_per_s": round(len(files) / best, 2),
            "ratio": round(reference / best, 2),
            "ratio_vs_same_bundle_naive": round(seconds / best, 2),
        }
        if isinstance(backend, TorchBackend | OpenVinoBackend):
            figures[name]["precision"] = backend.precision
    winner = max(figures, key=lambda k: figures[k]["slices_per_s"])
    return {
        "best_backend": winner,
        "slices_per_s": figures[winner]["slices_per_s"],
        "reference": f"classic U-Net (init_features=32, {CLASSIC_SIZE} px), eager fp32, batch 1",
        "reference_slices_per_s": round(len(files) / reference, 2),
        "ratio": figures[winner]["ratio"],
        "same_bundle_naive_slices_per_s": round(len(files) / seconds, 2),
        "ratio_vs_same_bundle_naive": figures[winner]["ratio_vs_same_bundle_naive"],
        "backends": figures,
    }


def default_bundle(root: Path) -> tuple[Path, str]:
    """The packaged t1ce bundle, or (not installed) one trained on phantoms for 2 steps."""
    try:
        return default_bundle_path("t1ce"), "packaged t1ce"
    except BundleError:
        return train_bundle(root / "train"), "trained on phantoms, 2 steps (packaged architectures)"


def print_table(result: dict[str, Any]) -> None:
    """Human-readable lines before the final JSON line."""
    print(f"{result['n_slices']} slices of {result['inputs']}; bundle {result['bundle']} {result['models']}")
    print(f"reference  {result['reference']}: {result['reference_slices_per_s']} slices/s")
    print(
        "same bundle, naive pipeline (eager fp32, batch 1): "
        f"{result['same_bundle_naive_slices_per_s']} slices/s"
    )
    for name, fig in result["backends"].items():
        print(f"{name:26s} {fig['slices_per_s']:8.2f} slices/s  {fig['ratio']:6.2f}x reference  "
              f"{fig['ratio_vs_same_bundle_naive']:5.2f}x naive same bundle")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder or zip (default: the packaged t1ce)")
    parser.add_argument(
        "--data", type=Path, help="folder of slices (default: figshare/LGG sample or phantoms)"
    )
    parser.add_argument("--n", type=int, default=64, help="number of slices")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--write", action="store_true", help="also write every output file")
    parser.add_argument("--threads", type=int, default=0, help="torch/ONNX/OpenVINO threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source_bundle, label = (args.bundle, str(args.bundle)) if args.bundle else default_bundle(root)
        bundle = load_bundle(with_onnx(source_bundle, root), load_onnx=True)
        if args.data:
            files, source = sorted(p for p in args.data.iterdir() if p.is_file())[: args.n], str(args.data)
        else:
            files, source = input_slices(root / "inputs", args.n, bundle.models["seg"].in_channels)
        result = {
            "inputs": source,
            "n_slices": len(files),
            "bundle": label,
            "models": {r: m.model_name for r, m in bundle.models.items()},
            "tta_flips": list(AnalysisSettings.for_bundle(bundle).tta_flips),
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "bf16_supported": bf16_supported(),
            **run(bundle, files, args.batch_size, root / "out" if args.write else None, args.threads),
        }
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
