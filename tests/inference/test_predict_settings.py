"""`braintumor predict` makes the masks the run's scores describe: its eval threshold, TTA and
post-processing, per image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from braintumor.cli import app
from braintumor.config import EvalConfig, dump_config, load_config
from braintumor.data.readers import read_image
from braintumor.evaluation.postprocess import postprocess
from braintumor.inference.predict import Predictor, mask_to_original


def _run_with_eval(tiny_runs: Path, tmp_path: Path, **settings: object) -> Path:
    run = tmp_path / "seg"
    shutil.copytree(tiny_runs / "seg", run)
    overrides = [f"eval.{k}={str(v).lower()}" for k, v in settings.items()]
    dump_config(load_config(run / "config.yaml", overrides), run / "config.yaml")
    return run


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "slice.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((40, 52)) * 255).astype(np.uint8)).save(path)
    return path


def test_predictor_follows_the_runs_eval_settings(tiny_runs: Path, tmp_path: Path) -> None:
    run = _run_with_eval(
        tiny_runs, tmp_path, threshold=0.3, largest_component=True, fill_holes=True, tta=True
    )
    weights = run / "checkpoints" / "best.safetensors"
    predictor = Predictor(weights)
    assert predictor.evaluation == EvalConfig(
        threshold=0.3, largest_component=True, fill_holes=True, tta=True
    )
    image = _image(tmp_path)
    result = predictor.predict_file(image, tmp_path / "out")
    array = read_image(image)
    _, logits = predictor(array)
    expected = postprocess(mask_to_original(logits, array.shape[:2], 0.3), True, True)
    mask = np.asarray(Image.open(result.outputs["mask"])) > 0
    assert np.array_equal(mask, expected.astype(bool)) and result.area_px == int(expected.sum())
    assert mask.any() and ndimage.label(mask)[1] == 1  # the largest component alone
    # the same weights read raw (defaults) differ only where the settings act
    raw = Predictor(weights, evaluation=EvalConfig())
    _, raw_logits = raw(array)
    assert not np.allclose(raw_logits.numpy(), logits.numpy())  # TTA averages flipped views


def test_cli_predict_reports_the_settings_it_used(tiny_runs: Path, tmp_path: Path) -> None:
    run = _run_with_eval(tiny_runs, tmp_path, threshold=0.4)
    out = tmp_path / "pred"
    result = CliRunner().invoke(
        app, ["predict", str(run), str(_image(tmp_path)), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["evaluation"]["threshold"] == 0.4 and printed["results"][0]["ok"]
    assert json.loads((out / "predictions.json").read_text())["evaluation"]["threshold"] == 0.4
