"""CLI verbs that use model bundles: analyze, bundle create / info, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from braintumor.cli.common import app, emit_json, err, out, progress_bar, run_guarded
from braintumor.cli.options import JsonFlag, MaskFloorOpt, mask_floor
from braintumor.runtime.fusion import MASK_CONFIDENCE_FLOOR

bundle_app = typer.Typer(help="Create and inspect model bundles.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@app.command("analyze")
def analyze(
    inputs: Annotated[
        list[Path], typer.Argument(help="Images (png/jpg/tif/.mat), NIfTI, DICOM files or folders.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for overlays, masks, JSON and CSV.")],
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Bundle folder, .zip, or packaged name: t1ce (default), flair-lgg."),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="auto (OpenVINO if installed, else torch), torch, openvino, onnx (`braintumor export`)."
        ),
    ] = "auto",
    gradcam: Annotated[bool, typer.Option("--gradcam", help="Save a Grad-CAM heat map per tumour.")] = False,
    min_area: Annotated[int | None, typer.Option(help="Smallest tumour in pixels (bundle default).")] = None,
    gate_threshold: Annotated[
        float | None,
        typer.Option(help="P(no tumour) from the gate at or above which a slice is tumour-free."),
    ] = None,
    postprocess: Annotated[
        bool | None, typer.Option("--postprocess/--no-postprocess", help="Largest component + fill holes.")
    ] = None,
    mask_confidence_floor: MaskFloorOpt = None,
    tta: Annotated[
        bool | None,
        typer.Option(
            "--tta/--no-tta",
            help="Average each network over the slice and its left-right mirror (twice the compute); "
            "the segmentation uncertainty is their disagreement, unknown without it (bundle default).",
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Slices per network call.")] = None,
    max_pixels: Annotated[int | None, typer.Option(help="Refuse slices with more pixels than this.")] = None,
    precision: Annotated[str, typer.Option(help="auto (bf16 where the CPU has it), bf16 or fp32.")] = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the results of an earlier analysis in --out.")
    ] = False,
    slices_as_images: Annotated[
        bool,
        typer.Option(
            "--slices-as-images",
            help="Analyse a patient folder's numbered slices (<id>_1.tif ... <id>_N.tif) as separate "
            "images, not as one volume.",
        ),
    ] = False,
    dicom_seg: Annotated[
        bool,
        typer.Option(
            "--dicom-seg",
            help="Also write <name>_seg.dcm, a DICOM SEG of the tumour referring to the source slices, "
            "for each DICOM input (series or file); other inputs get a note instead. Needs the "
            "dicom extra (highdicom).",
        ),
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write <name>_report.html per input: one self-contained page (print it to PDF "
            "from a browser) with the input's file name, the findings, the figures, the bundle's model "
            "card and the research-use statement. No path or patient attributes unless "
            "--report-identifiers.",
        ),
    ] = False,
    report_identifiers: Annotated[
        bool,
        typer.Option(
            "--report-identifiers",
            help="Put the input's path and, for DICOM input, PatientID, PatientName and StudyDate in "
            "the reports (implies --report).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Where the tumour is, how large, what kind, how sure and why, for each input.

    Writes <name>_overlay.png, <name>_mask.png, <name>.json (and <name>_mask.nii.gz for volumes,
    in the series' own geometry for DICOM; <name>_gradcam.png with --gradcam; <name>_seg.dcm for
    DICOM inputs with --dicom-seg; <name>_report.html, printable, with --report) per input, plus
    analysis.csv and slices.csv. A folder of one patient's numbered slices (LGG layout) is one
    volume: normalised and post-processed as one patient, as the bundle's segmenter was scored; a
    folder of several DICOM series gives one input per series (each with a note). Refuses an
    --out that holds an earlier analysis (unless --overwrite) and never writes over an input;
    folders given as input skip the files of earlier analyses. Exits 1 only when no input could
    be analysed. With a classify-only bundle (`bundle create --cls RUN` without --seg) each slice
    is classified whole: overlays carry the label, no mask files are written, and --dicom-seg
    gives a note instead of a SEG.

    Example: braintumor analyze scans/ slice.png --bundle bundles/t1ce --out analysis --json

    Example (for 3D Slicer, OHIF or a PACS): braintumor analyze dicom/patient1/ --out analysis --dicom-seg

    Example (a printable report per input): braintumor analyze scan.nii.gz --out analysis --report
    """
    from braintumor.extras import require
    from braintumor.inference.analyzer import Analyzer
    from braintumor.inference.out_folder import check_out_dir
    from braintumor.inference.sources import collect_inputs
    from braintumor.io_utils import prepare_out_dir
    from braintumor.runtime.tta import tta_views

    def go() -> None:
        found = collect_inputs(list(inputs), slices_as_volumes=not slices_as_images)
        check_out_dir(prepare_out_dir(out_dir, "--out"), found.items, overwrite)  # before loading models
        if dicom_seg:
            require("highdicom", "dicom", "--dicom-seg (DICOM SEG files)")
        settings: dict[str, Any] = {"min_area_px": min_area, "gate_threshold": gate_threshold,
                                    "batch_size": batch_size, "max_pixels": max_pixels}  # fmt: skip
        if postprocess is not None:
            settings.update(largest_component=postprocess, fill_holes=postprocess)
        if tta is not None:
            settings["tta_flips"] = tta_views(tta)
        floor = (
            mask_floor(mask_confidence_floor) if mask_confidence_floor is not None else None
        )  # refused early
        analyzer = Analyzer.from_bundle(bundle, backend=backend, precision=precision, **settings)
        if mask_confidence_floor is not None:  # set here: from_bundle ignores None, which "off" is
            chosen = dataclasses.replace(analyzer.settings, mask_confidence_floor=floor)
            analyzer = Analyzer(analyzer.bundle, analyzer.backend, chosen)
        with progress_bar("analysing", quiet=json_out) as update:
            results = analyzer.analyze_files(
                found, out_dir, gradcam, update, overwrite=overwrite, dicom_seg=dicom_seg,
                report=report or report_identifiers, identifiers=report_identifiers,
            )  # fmt: skip
        summary = {
            "bundle": str(analyzer.bundle.path), "backend": analyzer.backend.name, "out": str(out_dir),
            "csv": str(out_dir / "analysis.csv"), "n_ok": sum(r.ok for r in results),
            "n_failed": sum(not r.ok for r in results), "n_skipped": len(found.skipped),
            "results": [_entry(r.to_dict()) for r in results],
        }  # fmt: skip
        if json_out:
            emit_json(summary)
        else:
            _print_results(summary)
        if results and summary["n_ok"] == 0:
            raise typer.Exit(1)

    run_guarded(go)


def _entry(d: dict[str, Any]) -> dict[str, Any]:
    """Input-level result for the CLI (per-slice details stay in each input's JSON file)."""
    return {**{k: v for k, v in d.items() if k != "slices"}, "n_slices": len(d["slices"])}


def _print_results(summary: dict[str, Any]) -> None:
    """The results as a table on stdout; file names and errors are printed as text, never as markup."""
    table = Table(title=escape(f"analysis ({summary['backend']}) -> {summary['out']}"))
    for col in ("input", "tumour", "class", "p", "area", "uncertainty", "error"):
        table.add_column(col)
    for r in summary["results"]:
        p = r["probabilities"].get(r["class"]) if r["class"] else None
        area = f"{r['area_mm2']:.0f} mm²" if r["area_mm2"] is not None else f"{r['area_px']} px"
        area = "-" if r["area_px"] is None and r["area_mm2"] is None else area
        unc = r["uncertainty"]["segmentation"]
        note = r["error"] or ("warning: unlike the training slices" if r["warning"] else "")
        cells = (
            Path(r["input"]).name, str(r["tumour"]) if r["ok"] else "-", r["class"] or "-",
            f"{p:.2f}" if p is not None else "-", area if r["ok"] else "-",
            f"{unc:.4f}" if unc is not None else "-", note,
        )  # fmt: skip
        table.add_row(*map(escape, cells))
    out.print(table)
    n_skipped = summary["n_skipped"]
    skipped = f", {n_skipped} skipped (files of an earlier analysis)" if n_skipped else ""
    counts = f"{summary['n_ok']} analysed, {summary['n_failed']} failed{skipped}"
    err.print(f"{counts}; table: {summary['csv']}", markup=False)
    for r in summary["results"]:
        if r["warning"]:
            err.print(f"warning: {r['input']}: {r['warning']}", markup=False, soft_wrap=True)
        for note in r["notes"]:
            err.print(f"note: {note}", markup=False, soft_wrap=True)


@bundle_app.command("create")
def bundle_create(
    out_path: Annotated[Path, typer.Option("--out", help="Bundle folder to write (or .zip).")],
    seg: Annotated[
        Path | None,
        typer.Option(
            "--seg", help="Segmentation run folder (or its best.safetensors); omit to classify whole slices."
        ),
    ] = None,
    cls: Annotated[
        list[Path] | None,
        typer.Option(
            "--cls",
            help="With --seg: a ROI classification run (data.roi_expansion set), omit to only segment; "
            "repeat it for an ensemble averaged at analysis (the first is the primary). "
            "Without --seg: a whole-slice classification run (no data.roi_expansion), the only model.",
        ),
    ] = None,
    gate: Annotated[Path | None, typer.Option("--gate", help="Whole-slice tumour/no-tumour run.")] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name (default: folder name).")] = None,
    version: Annotated[str, typer.Option("--bundle-version", help="Bundle version string.")] = "1",
    zip_out: Annotated[bool, typer.Option("--zip", help="Write one .zip instead of a folder.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store weights as float16 (half the size).")] = False,
    command: Annotated[str | None, typer.Option(help="The training command, recorded as is.")] = None,
    data: Annotated[str, typer.Option(help="Free-text description of the training data.")] = "",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing bundle at --out.")] = False,
    fuse_forest: Annotated[
        bool,
        typer.Option(
            "--fuse-forest",
            help="Fit a random forest on where the tumour is, how large and how bright (the --cls run's "
            "training patients) and average it with the classifier at analysis.",
        ),
    ] = False,
    fuse_weight: Annotated[
        float, typer.Option("--fuse-weight", help="The classifier's share of the fused probabilities.")
    ] = 0.5,
    forest_trees: Annotated[int, typer.Option("--forest-trees", help="Trees in the fused forest.")] = 300,
    mask_confidence_floor: MaskFloorOpt = str(MASK_CONFIDENCE_FLOOR),
    json_out: JsonFlag = False,
) -> None:
    """Bundle a segmenter, an optional ROI classifier and an optional gate; refuses models that
    cannot work together. Without --cls the bundle only segments (tumours are labelled "tumour").
    With --fuse-forest the classifier is fused with a region-feature forest. Without --seg, a
    whole-slice classifier alone makes a classify-only bundle: each slice gets the classifier's
    class, no mask (no --gate nor --fuse-forest then: they act on the segmenter's tumours).

    Example: braintumor bundle create --seg runs/seg --cls runs/roi --gate runs/gate --out bundles/t1ce --fp16

    Example (segmentation only): braintumor bundle create --seg runs/lgg-seg --out bundles/flair

    Example (fused): braintumor bundle create --seg runs/seg --cls runs/roi --fuse-forest --out bundles/fused

    Example (ensemble of crops at two factors): braintumor bundle create --seg runs/seg --cls runs/roi-3.0
    --cls runs/roi-1.5 --out bundles/ensemble

    Example (classify whole slices): braintumor bundle create --cls runs/kaggle-slices --out bundles/kaggle
    """
    from braintumor.bundle.create import create_bundle
    from braintumor.bundle.load import bundle_info

    def go() -> None:
        path = create_bundle(seg, cls or None, out_path, gate=gate, name=name, version=version, fp16=fp16,
                             zip_output=zip_out, command=command, data=data, overwrite=overwrite,
                             fuse_forest=fuse_forest, fuse_weight=fuse_weight, forest_trees=forest_trees,
                             mask_confidence_floor=mask_floor(mask_confidence_floor or "off"))  # fmt: skip
        info = bundle_info(path)
        emit_json(info) if json_out else out.print(f"bundle written: {path} ({len(info['files'])} files)")

    run_guarded(go)


@bundle_app.command("info")
def bundle_info_cmd(
    path: Annotated[
        Path | None, typer.Argument(help="Bundle folder, .zip, or packaged name (default: t1ce).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Verify a bundle (hashes, metadata, weights) and show what it holds: models, preprocessing,
    training data and command, and the metrics each model measured on data it never saw.

    Example: braintumor bundle info flair-lgg --json
    """
    from braintumor.bundle.load import bundle_info, resolve_bundle_path

    def go() -> None:
        info = bundle_info(resolve_bundle_path(path))
        if json_out:
            emit_json(info)
            return
        table = Table(title=f"{info['name']} v{info['version']} ({info['created']})", show_header=False)
        segment_only = not info["has_classifier"]
        if not info["has_segmenter"]:
            table.add_row("kind", "classify-only: whole slices, no segmenter (no masks)")
            table.add_row("expansion", "- (whole slices)")
        else:
            table.add_row("expansion", "- (no classifier)" if segment_only else str(info["expansion"]))
        table.add_row("classes", "none: segmentation only" if segment_only else ", ".join(info["classes"]))
        for role, m in info["models"].items():
            prep = m["preprocessing"]
            crop = f" expansion={prep['roi_expansion']}" if prep.get("roi_expansion") is not None else ""
            table.add_row(role, f"{m['model']['name']} in={m['in_channels']} size={prep['image_size']} "
                                f"{prep['normalization']}{crop} score={m.get('best_score')}")  # fmt: skip
            table.add_row(f"{role} metrics", _headline(m.get("metrics", {})))
            if cv := m.get("cv_metrics"):
                table.add_row(f"{role} CV", _headline_cv(cv))
        table.add_row("fusion", _fusion(info.get("fusion")))
        table.add_row("analysis", _analysis(info.get("analysis") or {}))
        table.add_row("data", str(info.get("data") or "-"))
        table.add_row("training", str(info.get("training_command") or "-"))
        table.add_row("dtype", str(info.get("dtype")))
        table.add_row("onnx", ", ".join(info["onnx"]) or "none (braintumor export B --format onnx)")
        table.add_row("files", f"{len(info['files'])}, sha256 verified")
        out.print(table)

    run_guarded(go)


def _analysis(settings: dict[str, Any]) -> str:
    """The bundle's analysis defaults, one ``name=value`` each (lists joined by ``+``)."""
    shown = [f"{k}={'+'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in settings.items()]
    return ", ".join(shown) or "-"


@bundle_app.command("profile")
def bundle_profile_cmd(
    path: Annotated[Path, typer.Argument(help="Bundle folder to add the input profile to.")],
    data: Annotated[Path, typer.Option("--data", help="The bundle's training data (a dataset folder).")],
    source: Annotated[str, typer.Option(help="How warnings name that data, e.g. 'figshare T1-CE'.")],
    quantile: Annotated[
        float, typer.Option(help="Share of unseen slices of the training data that pass (0.5-0.9999).")
    ] = 0.99,
    json_out: JsonFlag = False,
) -> None:
    """Store what the training slices look like in a bundle, so that analyses warn about inputs
    that do not (another modality, not a brain MRI): ``warning`` in the JSON, CSV and page.

    Example: braintumor bundle profile bundles/t1ce --data ../shared/data/figshare --source "figshare T1-CE"
    """
    from braintumor.bundle.input_check import add_profile, profile_dataset
    from braintumor.errors import ConfigError

    def go() -> None:
        if not 0.5 <= quantile < 1.0:
            raise ConfigError(f"--quantile {quantile}; expected a share in [0.5, 1), e.g. 0.99")
        with progress_bar("profiling", quiet=json_out) as update:
            profile = profile_dataset(data, source, quantile, progress=update)
        add_profile(path, profile)
        summary = {"bundle": str(path), "slices": len(profile.reference), "source": source,
                   "threshold": round(profile.threshold, 3), "quantile": quantile}  # fmt: skip
        emit_json(summary) if json_out else out.print(summary)

    run_guarded(go)


def _fusion(fusion: dict[str, Any] | None) -> str:
    """E.g. ``classifier 0.5 + forest 0.5 (300 trees on 9 region features; fitted on ...)``."""
    if not fusion:
        return "none (the classifier alone)"
    w = float(fusion["weight_cnn"])
    return (f"classifier {w:g} + forest {1 - w:g} ({fusion['trees']} trees on {len(fusion['features'])} "
            f"region features; fitted on {fusion.get('fitted_on', '?')})")  # fmt: skip


HEADLINE = ("dice_per_patient_mean", "dice_per_slice_mean", "accuracy", "macro_f1", "roc_auc_ovr", "n")


def _headline(metrics: dict[str, Any]) -> str:
    """The few numbers worth a glance, e.g. ``accuracy=0.869 macro_f1=0.865 n=160``; for a model
    trained on every patient (``data.split=all``), that none was held out."""
    if metrics.get("held_out") == 0:
        return f"none held out: trained on all {metrics.get('train_patients')} patients (figures: its CV)"
    parts = [f"{k}={metrics[k]:.3f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
             for k in HEADLINE if metrics.get(k) is not None]  # fmt: skip
    return " ".join(parts) or "-"


def _headline_cv(cv: dict[str, Any]) -> str:
    """Cross-validation figures as mean ± std over folds, e.g. ``accuracy=0.923±0.014 (5 folds)``."""
    mean, std = cv.get("mean", {}), cv.get("std", {})
    parts = [f"{k}={mean[k]:.3f}±{std.get(k, float('nan')):.3f}"
             for k in HEADLINE if isinstance(mean.get(k), float)]  # fmt: skip
    return f"{' '.join(parts) or '-'} ({cv.get('n_folds')} folds: {cv.get('source')})"


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="Bundle folder.")],
    format: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    json_out: JsonFlag = False,
) -> None:
    """Write <net>.onnx files into a bundle (dynamic batch axis) and update its manifest.

    Example: braintumor export bundles/t1ce --format onnx
    """
    from braintumor.bundle.export import export_onnx
    from braintumor.errors import ConfigError

    def go() -> None:
        if format != "onnx":
            raise ConfigError(f"--format {format!r} is not supported; use onnx")
        written = [str(p) for p in export_onnx(path)]
        emit_json({"bundle": str(path), "written": written}) if json_out else out.print(written)

    run_guarded(go)
