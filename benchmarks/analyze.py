"""Benchmark ``braintumor analyze``: slices per second of each backend vs the naive reference.

Reference (the naive way): eager fp32 torch, one file at a time, batch 1, no channels_last, no
prefetching. Candidates: torch ``auto`` (bf16 autocast + channels_last where the CPU has native
bf16), torch fp32 + channels_last, and ONNX Runtime, each batching slices across files with a
background thread prefetching the next inputs. Every variant does the same work (flip TTA on
every network, post-processing, ROI crop); no output files are written unless ``--write``.

Usage:
    python benchmarks/analyze.py [--bundle B] [--data DIR] [--n 64] [--batch-size 32] [--write]

Without ``--bundle`` a bundle with the real-size architectures of the T1-CE configs (U-Net F=16,
ResNet-18 ROI classifier, ResNet-18 whole-slice gate, 128 px) is trained on phantoms for a few
steps (accuracy is irrelevant here). Inputs: the first ``--n`` slices of
../shared/data/lgg/kaggle_3m if present, else 256 px phantoms. Prints one JSON object.
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

from braintumor.inference.analyzer import Analyzer
from braintumor.inference.backends import OnnxBackend, TorchBackend, bf16_supported
from braintumor.inference.bundle import Bundle, load_bundle
from braintumor.inference.bundle_store import BundleReader
from braintumor.inference.pipeline import AnalysisSettings

LGG = Path(__file__).resolve().parents[2] / "shared" / "data" / "lgg" / "kaggle_3m"
BASE = ["data.image_size=128", "data.phantom_size=128", "data.phantom_count=48", "data.folds=3",
        "data.normalization=percentile-image", "data.channels=1", "train.batch_size=8",
        "train.precision=32-true", "train.epochs=1"]  # fmt: skip
RUNS = {
    "seg": ["model.name=unet", "model.kwargs={init_features: 16}"],
    "cls": ["train.task=classify", "model.name=resnet18", "train.loss=ce", "data.roi_expansion=1.5"],
    "gate": ["train.task=classify", "model.name=resnet18", "train.loss=ce"],
}


def train_bundle(root: Path) -> Path:
    """Train the three runs for 2 steps each on 128 px phantoms and bundle them (with ONNX)."""
    from braintumor.config import load_config
    from braintumor.inference.bundle_create import create_bundle
    from braintumor.inference.export import export_onnx
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
    from braintumor.inference.export import export_onnx

    if any(name.endswith(".onnx") for name in BundleReader(path).files):
        return path
    if path.is_file():
        raise SystemExit(f"{path}: a zip bundle without ONNX models; export its folder first")
    copy = Path(shutil.copytree(path, root / "bundle-onnx"))
    export_onnx(copy)
    return copy


def input_slices(folder: Path, n: int) -> tuple[list[Path], str]:
    """``n`` slice files copied into ``folder``: LGG TIFFs when present, else phantom PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
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


def run(
    bundle: Bundle, files: list[Path], batch_size: int, write: Path | None, threads: int
) -> dict[str, Any]:
    base = AnalysisSettings.for_bundle(bundle)
    naive = replace(base, batch_size=1, prefetch=False)
    fast = replace(base, batch_size=batch_size, prefetch=True)
    nets = {role: m.net for role, m in bundle.models.items()}
    reference = Analyzer(bundle, TorchBackend(nets, "fp32", channels_last=False), naive)
    seconds = timed(reference, files, one_by_one=True, out=write and write / "reference")
    figures: dict[str, Any] = {}
    candidates = {
        "torch-auto": TorchBackend(nets, "auto"),
        "torch-fp32-channels-last": TorchBackend(nets, "fp32", channels_last=True),
        "onnx": OnnxBackend({r: m.onnx for r, m in bundle.models.items() if m.onnx}, threads),
    }
    for name, backend in candidates.items():
        analyzer = Analyzer(bundle, backend, fast)
        best = min(timed(analyzer, files, False, write and write / name) for _ in range(2))
        figures[name] = {"slices_per_s": round(len(files) / best, 2), "ratio": round(seconds / best, 2)}
        if isinstance(backend, TorchBackend):
            figures[name]["precision"] = backend.precision
    winner = max(figures, key=lambda k: figures[k]["slices_per_s"])
    return {
        "best_backend": winner,
        "slices_per_s": figures[winner]["slices_per_s"],
        "reference_slices_per_s": round(len(files) / seconds, 2),
        "ratio": figures[winner]["ratio"],
        "backends": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder or zip (default: train one)")
    parser.add_argument("--data", type=Path, help="folder of slices to analyse (default: LGG or phantoms)")
    parser.add_argument("--n", type=int, default=64, help="number of slices")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--write", action="store_true", help="also write every output file")
    parser.add_argument("--threads", type=int, default=0, help="torch/ONNX intra-op threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = with_onnx(args.bundle, root) if args.bundle else train_bundle(root / "train")
        bundle = load_bundle(path, load_onnx=True)
        if args.data:
            files, source = sorted(p for p in args.data.iterdir() if p.is_file())[: args.n], str(args.data)
        else:
            files, source = input_slices(root / "inputs", args.n)
        result = {
            "inputs": source,
            "n_slices": len(files),
            "bundle": str(args.bundle or "trained on phantoms, 2 steps (U-Net F=16, 2x ResNet-18, 128 px)"),
            "models": {r: m.model_name for r, m in bundle.models.items()},
            "tta_flips": list(AnalysisSettings.for_bundle(bundle).tta_flips),
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "bf16_supported": bf16_supported(),
            **run(bundle, files, args.batch_size, root / "out" if args.write else None, args.threads),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
