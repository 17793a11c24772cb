"""Loss functions by name (MONAI for the segmentation losses)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss, DiceLoss, FocalLoss, TverskyLoss
from torch import nn

from braintumor.registry import Registry

LOSSES: Registry[Callable[[], nn.Module]] = Registry("loss")

LOSSES.register("dice")(lambda: DiceLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0))
LOSSES.register("dice-bce")(lambda: DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0))
# batch Dice (nnU-Net's 2D default): one Dice over the whole batch instead of a mean of per-slice
# Dice values, so a tumour-free slice does not pull every prediction towards empty
LOSSES.register("dice-bce-batch")(lambda: DiceCELoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0))


class TverskyBCELoss(nn.Module):
    """Tversky loss + binary cross-entropy on logits: DiceCELoss with false negatives weighted
    ``beta`` and false positives ``alpha`` (Salehi et al. 2017: 0.3 / 0.7 favours recall)."""

    def __init__(self, alpha: float = 0.3, beta: float = 0.7) -> None:
        super().__init__()
        self.tversky = TverskyLoss(sigmoid=True, alpha=alpha, beta=beta, smooth_nr=1.0, smooth_dr=1.0)
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.tversky(logits, target) + self.bce(logits, target)


# a recall-leaning Dice+BCE for under-segmented faint lesions (on the LGG DU site it did not beat
# dice-bce; dice-bce-batch did: docs/RESULTS.md, study 4)
LOSSES.register("tversky-bce")(TverskyBCELoss)
LOSSES.register("focal")(lambda: FocalLoss(gamma=2.0, use_softmax=False))
LOSSES.register("ce")(lambda: nn.CrossEntropyLoss())
LOSSES.register("ce-smooth")(lambda: nn.CrossEntropyLoss(label_smoothing=0.1))


def create_loss(name: str) -> nn.Module:
    """Loss module registered as ``name`` (segmentation losses take logits and float masks)."""
    return LOSSES.get(name)()


def segmentation_target(mask: torch.Tensor) -> torch.Tensor:
    """uint8 B×1×H×W mask -> float target of the same shape."""
    return mask.float()
