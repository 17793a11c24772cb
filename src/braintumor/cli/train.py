"""CLI verbs that train and use models: train, cv, evaluate, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from braintumor.cli.common import app, emit_json, err, out, progress_bar, run_guarded
from braintumor.cli.options import ConfigOpt, DataOpt, FoldsOpt, InitOpt, JsonFlag, OnlyOpt, OutOpt, SetOpt
from braintumor.run_dir import RunDir

train_app = typer.Typer(help="Train a segmentation or classification model.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _config(config: Path | None, data: Path | None, task: str | None, overrides: list[str] | None) -> Any:
    from braintumor.config import load_config

    extra = list(overrides or [])
    if data is not None:
        extra.append(f"data.path={data}")
    if task is not None:
        extra.append(f"train.task={task}")
    return load_config(config, extra)


def trainer_options(json_out: bool) -> dict[str, Any]:
    """Progress bar unless --json; DDP over the processes when launched by ``torchrun``."""
    import os

    options: dict[str, Any] = {"enable_progress_bar": not json_out}
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        options.update(strategy="ddp", devices=local, num_nodes=world // local)
    return options


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("per_patient", "per_class", "confusion")}


def _train(task: str, config: Path | None, data: Path | None, out_dir: Path, overrides: list[str] | None,
           fold: int | None, init_from: Path | None, resume: bool, json_out: bool) -> None:  # fmt: skip
    from braintumor.training.runner import train_fold

    def go() -> None:
        extra = list(overrides or [])
        extra += [f"data.fold={fold}"] if fold is not None else []
        extra += [f"model.init_from={init_from}"] if init_from is not None else []
        cfg = _config(config, data, task, extra)
        with progress_bar("decoding", quiet=json_out) as update:
            metrics = train_fold(cfg, out_dir, resume=resume, progress=update,
                                 trainer_overrides=trainer_options(json_out))  # fmt: skip
        if not metrics:  # a non-zero rank of a distributed run: rank 0 reports
            return
        if json_out:
            emit_json(metrics)
        else:
            out.print(_headline(metrics))
            err.print(f"run folder: {out_dir}")

    run_guarded(go)


@train_app.command("segment")
def train_segment(
    out_dir: OutOpt, config: ConfigOpt = None, data: DataOpt = None, overrides: SetOpt = None,
    fold: Annotated[int | None, typer.Option(help="Held-out fold (default: data.fold).")] = None,
    init_from: InitOpt = None,
    resume: Annotated[bool, typer.Option(help="Resume from checkpoints/last.ckpt if present.")] = True,
    json_out: JsonFlag = False,
) -> None:  # fmt: skip
    """Train a U-Net on one fold and evaluate it on the fold's unseen patients.

    Example:
      braintumor train segment --config configs/lgg-unet-cpu.yaml --data DATA/lgg128 --out runs/lgg
    """
    _train("segment", config, data, out_dir, overrides, fold, init_from, resume, json_out)


@train_app.command("classify")
def train_classify(
    out_dir: OutOpt, config: ConfigOpt = None, data: DataOpt = None, overrides: SetOpt = None,
    fold: Annotated[int | None, typer.Option(help="Held-out fold (default: data.fold).")] = None,
    init_from: InitOpt = None,
    resume: Annotated[bool, typer.Option(help="Resume from checkpoints/last.ckpt if present.")] = True,
    json_out: JsonFlag = False,
) -> None:  # fmt: skip
    """Train a classifier (whole slices, or tumour crops with data.roi_expansion).

    Example:
      braintumor train classify --config configs/kaggle4-cpu.yaml --data DATA/kaggle4 --out runs/k4
    """
    _train("classify", config, data, out_dir, overrides, fold, init_from, resume, json_out)


@app.command("cv")
def cv(
    out_dir: OutOpt, config: ConfigOpt = None, data: DataOpt = None, overrides: SetOpt = None,
    folds: FoldsOpt = None,
    only: OnlyOpt = None,
    then_all: Annotated[
        bool,
        typer.Option(
            "--then-all",
            help="Then train the configuration on every patient into OUT/all/ (last epoch, no "
            "validation): the model to ship; its bundle shows these folds' figures.",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:  # fmt: skip
    """Patient-level k-fold cross-validation; aggregated table in cv_metrics.json / cv_folds.csv.

    The table covers every fold scored in the folder so far: folds run one at a time with --only
    (resumed, or as processes side by side on one GPU) add up to one CV.

    Example:
      braintumor cv --config configs/figshare-unet-cpu.yaml --data DATA/figshare --out runs/cv
      braintumor cv --config configs/lgg-unet-cpu.yaml --data DATA/lgg128 --out runs/lgg-cv --then-all
    """
    from braintumor.training.cv import cross_validate

    def go() -> None:
        extra = [*(overrides or []), *([f"data.folds={folds}"] if folds else [])]
        cfg = _config(config, data, None, extra)
        summary = cross_validate(
            cfg, out_dir, folds=only, then_all=then_all, trainer_overrides=trainer_options(json_out)
        )
        if json_out:
            emit_json(summary)
        else:
            out.print({"mean": summary["mean"], "std": summary["std"]})

    run_guarded(go)


@app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by train.")],
    data: DataOpt = None,
    tta: Annotated[
        bool | None, typer.Option(help="Average predictions over flips (default: the run's eval.tta).")
    ] = None,
    postprocess: Annotated[
        bool | None,
        typer.Option(
            help="Keep the largest component and fill holes, or not (default: the run's eval settings)."
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--postprocess-scope",
            help="slice: largest 2D component per slice; patient: largest 3D component per patient volume "
            "(default: the run's eval.postprocess_scope).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write tables and figures here (default: the run folder).")
    ] = None,
    tune: Annotated[
        bool, typer.Option(help="First choose TTA, threshold and post-processing on the validation patients.")
    ] = False,
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(
            "--ensemble",
            help="Average with this run's best weights too (repeatable); it must not have trained on "
            "the held-out patients.",
        ),
    ] = None,
    as_shipped: Annotated[
        bool,
        typer.Option(
            "--as-shipped",
            help="Score a segmentation run through the bundle made from it, exactly as `braintumor "
            "analyze` runs it on the patients' files (results in <out>/shipped/).",
        ),
    ] = False,
    overrides: SetOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Score a run's best weights on its held-out patients (or on all of another dataset).

    Example: braintumor evaluate runs/lgg --tta --postprocess --postprocess-scope patient --json
    """
    from braintumor.training.evaluate import evaluate_run

    def go() -> None:
        if as_shipped:
            from braintumor.errors import ConfigError
            from braintumor.experiments.shipped import evaluate_as_shipped

            if tune or ensemble or overrides or tta is not None or postprocess is not None or scope:
                raise ConfigError(
                    "--as-shipped scores the bundle as the run's eval settings define it; retrain or "
                    "evaluate without --as-shipped to try other settings"
                )
            metrics = evaluate_as_shipped(run_dir, data, out_dir)
            emit_json(metrics) if json_out else out.print(_headline(metrics))
            return
        extra = list(overrides or [])
        if tta is not None:  # --no-tta must turn off a run's own TTA, not fall back to it
            extra.append(f"eval.tta={str(tta).lower()}")
        if postprocess is not None:
            flag = str(postprocess).lower()
            extra += [f"eval.largest_component={flag}", f"eval.fill_holes={flag}"]
        extra += [f"eval.postprocess_scope={scope}"] if scope else []  # else keep the run's own
        metrics = evaluate_run(
            run_dir, data, out_dir=out_dir, overrides=extra, tune=tune, ensemble=ensemble or ()
        )
        emit_json(metrics) if json_out else out.print(_headline(metrics))

    run_guarded(go)


@app.command("predict")
def predict(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or its checkpoints/best.safetensors).")],
    images: Annotated[list[Path], typer.Argument(help="Image files (png/jpg/tif/figshare .mat).")],
    out_dir: OutOpt = Path("predictions"),
    json_out: JsonFlag = False,
) -> None:
    """Masks (PNG + overlay) or class probabilities for each image; predictions.csv in --out.

    Masks follow the run's eval settings (threshold, TTA, largest component, hole filling), per image.

    Example: braintumor predict runs/lgg slice1.tif slice2.tif --out preds
    """
    from braintumor.inference.batch import predict_files

    def go() -> None:
        weights = run_dir if run_dir.suffix == ".safetensors" else RunDir(run_dir).best_weights
        summary = predict_files(weights, images, out_dir)
        if json_out:
            emit_json(summary)
            return
        for r in summary["results"]:
            out.print(r, highlight=False)

    run_guarded(go)
