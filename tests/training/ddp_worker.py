"""Run under torchrun by test_resume_ddp.py: fit with DDP (gloo) and save each rank's weights."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from braintumor.cli.train import trainer_options
from braintumor.config import load_config
from braintumor.training.runner import finish_fold, fit_fold

SETS = [
    "data.image_size=32", "data.folds=3", "data.normalization=percentile-image", "train.batch_size=4",
    "train.precision=32-true", "model.kwargs={init_features: 4}", "train.epochs=2",
]  # fmt: skip


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = load_config(None, [f"data.path={data}", *SETS])
    options = trainer_options(json_out=True)
    if options.get("strategy") != "ddp" or options.get("devices") != 2:
        raise SystemExit(f"expected DDP over 2 processes, got {options}")
    result = fit_fold(cfg, out / "run", trainer_overrides=options)
    net = result.module.net  # type: ignore[attr-defined]
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / f"rank{os.environ['RANK']}.safetensors"))
    if result.trainer.is_global_zero:
        finish_fold(result, out / "run")


if __name__ == "__main__":
    main()
