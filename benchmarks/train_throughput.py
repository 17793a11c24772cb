"""Benchmark the segmentation training engine on this machine.

Prints one JSON object with slices/s of:
- a plain PyTorch loop (bf16 autocast, channels_last, AdamW, Dice+BCE) — the reference;
- the Lightning engine (SegmentationModule + Trainer, same model/batch/precision) and its overhead;
- the plain loop in fp32 (bf16 speed-up);
- inference (eval mode, bf16, channels_last).

Usage: python benchmarks/train_throughput.py [--size 128] [--features 16] [--steps 20] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from braintumor.config import ModelConfig, TrainConfig, to_dict
from braintumor.models import create_model
from braintumor.training.losses import create_loss
from braintumor.training.modules import SegmentationModule


def batches(n: int, batch: int, size: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        {"image": torch.rand(batch, 3, size, size, generator=g),
         "mask": (torch.rand(batch, 1, size, size, generator=g) > 0.8).to(torch.uint8)}
        for _ in range(n)
    ]  # fmt: skip


def plain_loop(
    data: list[dict[str, torch.Tensor]], net: torch.nn.Module, bf16: bool, warmup: int = 3
) -> float:
    """Training slices/s of ``net`` in a bare PyTorch loop (AdamW, Dice+BCE, channels_last)."""
    net = net.to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = create_loss("dice-bce")
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    start = 0.0
    for i, b in enumerate(data):
        if i == warmup:
            start = time.perf_counter()
        with ctx():
            logits = net(b["image"].contiguous(memory_format=torch.channels_last))
        loss = loss_fn(logits.float(), b["mask"].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (len(data) - warmup) * len(data[0]["image"]) / (time.perf_counter() - start)


class _Timer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
        self.end = time.perf_counter()


def lightning_loop(data: list[dict[str, torch.Tensor]], features: int, warmup: int = 3) -> float:
    model = ModelConfig("unet", 3, 1, {"init_features": features})
    train = TrainConfig(augment=False, scheduler="none", precision="bf16-mixed", loss="dice-bce")
    module = SegmentationModule(to_dict(model), to_dict(train), 3, 1, ["tumour"])
    images = torch.cat([b["image"] for b in data])
    masks = torch.cat([b["mask"] for b in data])

    class Dicts(TensorDataset):
        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
            image, mask = super().__getitem__(i)
            return {"image": image, "mask": mask}

    loader = DataLoader(Dicts(images, masks), batch_size=len(data[0]["image"]), shuffle=False)
    timer = _Timer(warmup)
    trainer = L.Trainer(
        max_steps=len(data), precision="bf16-mixed", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    return (len(data) - warmup) * len(data[0]["image"]) / (timer.end - timer.start)


@torch.inference_mode()
def inference(size: int, net: torch.nn.Module, batch: int = 32, reps: int = 5) -> float:
    """Inference slices/s of ``net`` (eval mode, bf16 autocast, channels_last)."""
    net = net.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(x)
        start = time.perf_counter()
        for _ in range(reps):
            net(x)
    return batch * reps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    data = batches(args.steps, args.batch, args.size)

    def unet() -> torch.nn.Module:
        return create_model("unet", in_channels=3, out_channels=1, init_features=args.features)

    plain_bf16 = plain_loop(data, unet(), bf16=True)
    engine = lightning_loop(data, args.features)
    plain_fp32 = plain_loop(data, unet(), bf16=False)
    result = {
        "model": f"unet init_features={args.features}", "size": args.size, "batch": args.batch,
        "threads": torch.get_num_threads(),
        "plain_bf16_slices_per_s": round(plain_bf16, 2),
        "lightning_bf16_slices_per_s": round(engine, 2),
        "lightning_overhead_pct": round(100 * (plain_bf16 / engine - 1), 1),
        "plain_fp32_slices_per_s": round(plain_fp32, 2),
        "bf16_speedup": round(plain_bf16 / plain_fp32, 2),
        "inference_bf16_slices_per_s": round(inference(args.size, unet()), 1),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
