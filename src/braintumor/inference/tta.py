"""Test-time augmentation: average predictions over flips, returned in logit space."""

from __future__ import annotations

from collections.abc import Callable

import torch

FLIPS: dict[str, tuple[int, ...]] = {"none": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}


def predict_tta(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    task: str,
    flips: tuple[str, ...] = ("none", "h"),
) -> torch.Tensor:
    """Average the model's probabilities over flipped copies of ``x`` (B×C×H×W).

    Segmentation outputs (B×1×H×W logits) are flipped back before averaging sigmoid probabilities;
    classification outputs (B×K logits) average softmax probabilities. The mean is returned as
    logits (``logit(p)`` or ``log(p)``), so thresholds at 0 and argmax work as without TTA.
    """
    total: torch.Tensor | None = None
    for name in flips:
        dims = FLIPS[name]
        out = forward(torch.flip(x, dims) if dims else x).float()
        if task == "segment":
            prob = torch.sigmoid(torch.flip(out, dims) if dims else out)
        else:
            prob = out.softmax(dim=1)
        total = prob if total is None else total + prob
    assert total is not None  # flips is never empty
    mean = (total / len(flips)).clamp(1e-6, 1 - 1e-6)
    return torch.logit(mean) if task == "segment" else mean.log()
