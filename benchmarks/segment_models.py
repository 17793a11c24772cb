"""Benchmark the registered segmentation networks: training and inference slices/s per model.

Every arm trains in the same bare PyTorch loop (bf16 autocast, channels_last, AdamW, Dice+BCE) on
the same random 3-channel batches, and is printed with its speed relative to the reference, the
classic LGG U-Net at ``init_features=16`` (``configs/lgg-unet-f16-cpu.yaml``), measured in the same
run. Under a fixed training budget the ratio is the share of the reference's epochs an arm gets.

Usage: python benchmarks/segment_models.py [--size 128] [--batch 16] [--steps 8] [--arms a,b]
Prints one JSON object: per arm, parameters, train bf16 slices/s, × reference, inference slices/s.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from braintumor.models import count_parameters, create_model
from train_throughput import batches, inference, plain_loop

SMALL = [16, 32, 64, 128, 256]
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "unet-f16": ("unet", {"init_features": 16}),  # the reference: configs/lgg-unet-f16-cpu.yaml
    "unet-f32": ("unet", {"init_features": 32}),  # the LGG reference width
    "monai-unet": ("monai-unet", {}),
    "monai-unet-16": ("monai-unet", {"channels": SMALL}),  # configs/lgg-unet-cpu.yaml
    "attention-unet": ("attention-unet", {}),
    "attention-unet-16": ("attention-unet", {"channels": SMALL}),
    "basic-unet": ("basic-unet", {}),
    "dynunet": ("dynunet", {}),
    "dynunet-16": ("dynunet", {"filters": SMALL}),
}
REFERENCE = "unet-f16"


def measure(arm: str, data: list[dict[str, torch.Tensor]], size: int) -> dict[str, Any]:
    """Parameters, training and inference slices/s of one arm."""
    name, kwargs = ARMS[arm]
    net = create_model(name, in_channels=3, out_channels=1, **kwargs)
    return {
        "model": name, "kwargs": kwargs,
        "parameters": count_parameters(net),
        "train_bf16_slices_per_s": round(plain_loop(data, net, bf16=True), 2),
        "inference_bf16_slices_per_s": round(inference(size, net), 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed steps after 3 warm-up steps")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {list(ARMS)}")
    if REFERENCE not in arms:
        arms.insert(0, REFERENCE)
    data = batches(args.steps + 3, args.batch, args.size)
    results = {arm: measure(arm, data, args.size) for arm in arms}
    reference = results[REFERENCE]["train_bf16_slices_per_s"]
    for row in results.values():
        row["train_x_reference"] = round(row["train_bf16_slices_per_s"] / reference, 3)
    summary = {"size": args.size, "batch": args.batch, "threads": torch.get_num_threads()}
    print(json.dumps({**summary, "reference": REFERENCE, "arms": results}))


if __name__ == "__main__":
    main()
