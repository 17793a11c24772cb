"""Benchmark classifiers: training images/s in bf16 and fp32, and inference images/s, per model.

Usage: python benchmarks/classify_throughput.py [--size 128] [--batch 16] [--steps 4] [--models a,b]
Prints one JSON object: per model, parameters, train_bf16/train_fp32 images/s, bf16 speed-up,
inference bf16 images/s.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from braintumor.models import count_parameters, create_model

DEFAULT = "cnn-small,cnn-deep,resnet18,resnet50,densenet121,vgg16"


def train_rate(name: str, size: int, batch: int, steps: int, bf16: bool) -> float:
    net = create_model(name, in_channels=1, num_classes=4).train()
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 4, (batch,))
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    start = 0.0
    for i in range(steps + 1):  # the first step warms up
        if i == 1:
            start = time.perf_counter()
        with ctx():
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


@torch.inference_mode()
def inference_rate(name: str, size: int, batch: int, reps: int = 3) -> float:
    net = create_model(name, in_channels=1, num_classes=4).eval()
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.rand(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
        start = time.perf_counter()
        for _ in range(reps):
            net(x)
    return reps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--models", default=DEFAULT)
    args = parser.parse_args()
    rows = {}
    for name in args.models.split(","):
        bf16 = train_rate(name, args.size, args.batch, args.steps, bf16=True)
        fp32 = train_rate(name, args.size, args.batch, args.steps, bf16=False)
        rows[name] = {
            "parameters": count_parameters(create_model(name, in_channels=1, num_classes=4)),
            "train_bf16_images_per_s": round(bf16, 1),
            "train_fp32_images_per_s": round(fp32, 1),
            "bf16_speedup": round(bf16 / fp32, 2),
            "inference_bf16_images_per_s": round(inference_rate(name, args.size, 2 * args.batch), 1),
        }
    print(
        json.dumps(
            {"size": args.size, "batch": args.batch, "threads": torch.get_num_threads(), "models": rows}
        )
    )


if __name__ == "__main__":
    main()
