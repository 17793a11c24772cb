"""Slow: kill a training mid-epoch and resume it; train under torchrun with 2 gloo processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from braintumor.data.phantom import generate_phantoms

pytestmark = pytest.mark.slow
SETS = [
    "data.image_size=32", "data.folds=3", "data.normalization=percentile-image", "train.batch_size=4",
    "train.precision=32-true", "model.kwargs={init_features: 4}", "train.checkpoint_every_steps=3",
]  # fmt: skip


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from braintumor.cli import app; app()", *args]


def sets(*extra: str) -> list[str]:
    return [a for s in [*SETS, *extra] for a in ("--set", s)]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ph")
    generate_phantoms(folder, n_patients=24, slices_per_patient=6, size=32, seed=3)
    return folder


def test_kill_mid_epoch_then_resume(phantoms: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "segment", "--data", str(phantoms), "--out", str(run), *sets("train.epochs=4"), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cli(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not (last.is_file() and (run / "history.csv").is_file()) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.is_file(), "no checkpoint was written before the kill"
    assert not (run / "metrics.json").exists(), "training finished before it could be killed"
    done = subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert metrics["epochs"] == 4
    epochs = [int(line.split(",")[0]) for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [0, 1, 2, 3]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_torchrun_two_gloo_processes_agree(phantoms: Path, tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29531",
           str(worker), str(phantoms), str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = tmp_path / "rank0.safetensors", tmp_path / "rank1.safetensors"
    assert _digest(rank0) == _digest(rank1), "DDP replicas diverged"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "segment" and metrics["epochs"] == 2
