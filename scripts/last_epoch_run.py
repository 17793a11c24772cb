"""Copy a finished run with its last epoch's weights in place of the checkpoint chosen on validation,
so that ``braintumor evaluate`` scores the last epoch on the same held-out patients.

    python scripts/last_epoch_run.py runs/lgg-site-fold0 runs/lgg-site-fold0-last
    braintumor evaluate runs/lgg-site-fold0-last
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from braintumor.models.network import network_from_weights
from braintumor.models.weights import save_weights
from braintumor.run_dir import RunDir


def last_epoch_run(run: RunDir, out: RunDir) -> int:
    """Write ``out`` (config, splits, last-epoch weights with the run's card); returns the epoch."""
    net, card = network_from_weights(run.best_weights)  # the architecture and its card
    state = torch.load(run.last_checkpoint, map_location="cpu", weights_only=True)
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    )
    out.checkpoints.mkdir(parents=True, exist_ok=True)
    for name in (RunDir.CONFIG, RunDir.SPLITS):
        shutil.copy(run.path / name, out.path / name)
    save_weights(net, out.best_stem, card)
    return int(state["epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="finished run folder (checkpoints/last.ckpt)")
    parser.add_argument("out", type=Path, help="new run folder to write")
    args = parser.parse_args()
    epoch = last_epoch_run(RunDir(args.run), RunDir(args.out))
    print(f"{args.out}: weights of epoch {epoch} of {args.run}; score with `braintumor evaluate {args.out}`")


if __name__ == "__main__":
    main()
