"""Average several trained networks: one model to evaluate, with no member trained on its test set."""

from __future__ import annotations

from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any

import torch
from torch import nn

from braintumor.data.splits import SplitLeakageError, Splits
from braintumor.models.card import ModelCard
from braintumor.models.network import network_from_weights
from braintumor.models.weights import CheckpointError
from braintumor.run_dir import RunDir


class ProbabilityMean(nn.Module):
    """The members' mean probability (sigmoid for one output channel, else softmax), returned as
    logits (log-probabilities for classes) so that thresholds and TTA treat it as one network."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [member(x).float() for member in self.members]
        if outputs[0].shape[1] == 1:
            probability = torch.stack([o.sigmoid() for o in outputs]).mean(dim=0)
            return torch.logit(probability, eps=1e-6)
        probability = torch.stack([o.softmax(dim=1) for o in outputs]).mean(dim=0)
        return probability.clamp_min(1e-12).log()


def load_ensemble(weights: Sequence[Path]) -> tuple[nn.Module, ModelCard]:
    """Load each weights file; one file gives its own network, several their :class:`ProbabilityMean`.

    Raises:
        CheckpointError: the members differ in task, output classes, input channels or preprocessing.
    """
    loaded = [network_from_weights(w) for w in weights]
    if len(loaded) == 1:
        return loaded[0]
    first = loaded[0][1]

    def signature(card: ModelCard) -> tuple[Any, ...]:
        return card.task, card.classes, card.in_channels, card.preprocessing

    for path, (_, card) in zip(weights[1:], loaded[1:], strict=True):
        if signature(card) != signature(first):
            raise CheckpointError(
                f"{path}: task, classes, input channels or preprocessing {signature(card)} differ from "
                f"{weights[0]}'s {signature(first)}; ensemble members must take the same inputs"
            )
    return ProbabilityMean([net for net, _ in loaded]), first


def check_members_unseen(runs: Sequence[Path], test: Set[str], tuned_on: Set[str] = frozenset()) -> None:
    """Refuse a member run that trained on a ``test`` or ``tuned_on`` patient (or image, for
    image-level splits) or chose its checkpoint on a ``test`` one."""
    from braintumor.config import load_config

    for run in runs:
        splits, fold = Splits.load(RunDir(run).splits), load_config(RunDir(run).config).data.fold
        part = splits.folds[fold]
        seen = set(part["train"]) & (test | tuned_on) | set(part["val"]) & test
        if seen:
            examples = ", ".join(sorted(seen)[:3])
            raise SplitLeakageError(
                f"{run}: fold {fold} trained or chose its checkpoint on {len(seen)} {splits.unit}(s) "
                f"held out here ({examples}); an ensemble member must not have seen them"
            )
