"""Files written by an analysis: overlays, masks, Grad-CAM, one JSON per input, batch CSVs.

Per input ``<name>``: ``<name>.json``; for an image ``<name>_overlay.png`` (mask outline in red
and the label), ``<name>_mask.png`` ({0,255}) and with Grad-CAM ``<name>_gradcam.png``; for a
volume the same per tumour slice as ``<name>_s<k>_*.png`` plus ``<name>_mask.nii.gz``: for NIfTI
input with the input's shape, voxel order and affine; for a DICOM series, X×Y×Z = column × row ×
slice in slice order with the affine of its headers (it overlays the series in 3D Slicer or
ITK-SNAP as a dcm2niix conversion of it would); for a folder of numbered slices (or a DICOM series
without positions), the same voxel order with an affine that reads back in the view of
:mod:`~braintumor.data.volumes` (columns to the left, rows to posterior, slices upward; the
pixel and slice spacing where known, else 1 mm). With ``dicom_seg``, a DICOM input also gets
``<name>_seg.dcm`` (:mod:`~braintumor.inference.dicom_seg`); any other input gets a note in its
result's ``notes`` saying why it has none. With a report context, each input also gets
``<name>_report.html`` (:mod:`~braintumor.inference.report`). A classify-only bundle makes no
mask (``segmented=False``): no ``_mask.png`` nor ``_mask.nii.gz``, overlays show the slice with its
label only, and ``dicom_seg`` gives a note (:func:`no_mask_note`) instead of a SEG. Batch:
``analysis.csv`` (one row per input, failures included with their error) and ``slices.csv`` (one
row per analysed slice), with a ``prob_<class>`` column per class (none for segmentation-only
bundles), ``gate_prob_<class>`` with a gate and ``cnn_prob_<class>`` (the classifier alone) with
a fused bundle. Text cells of the CSVs that a spreadsheet would run as a formula get a leading
``'`` (the JSON keeps the true text). The folder also gets the marker ``.braintumor-analysis.json`` (see
:mod:`~braintumor.inference.out_folder`). Every write is atomic.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from braintumor.data.volumes import view_to_nifti
from braintumor.inference.dicom_seg import SEG_SUFFIX, seg_refusal, write_dicom_seg
from braintumor.inference.overlay import overlay_rgb, to_gray_uint8
from braintumor.inference.report import REPORT_SUFFIX, ReportContext, write_report
from braintumor.inference.results import AnalysisResult, SliceResult
from braintumor.inference.sources import Scan
from braintumor.io_utils import atomic_write, atomic_write_json

MIN_OVERLAY_SIDE = 256
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _save_png(path: Path, array: np.ndarray) -> str:
    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))
    return str(path)


def _upscale(rgb: np.ndarray) -> np.ndarray:
    """Nearest-neighbour upscaling of small slices so the label text stays legible."""
    factor = math.ceil(MIN_OVERLAY_SIDE / max(rgb.shape[:2]))
    return rgb.repeat(factor, 0).repeat(factor, 1) if factor > 1 else rgb


def caption(result: SliceResult) -> str:
    """Overlay label: class, its probability (when classified) and the tumour area (when known)."""
    if not result.tumour:
        return f"no tumour ({result.label})" if result.label else "no tumour"
    prob = result.probabilities.get(result.label or "")
    label = f"{result.label} {prob:.2f}" if prob is not None else str(result.label or "tumour")
    if result.area_mm2 is not None:
        return f"{label} | {result.area_mm2:.0f} mm2"
    return f"{label} | {result.area_px} px" if result.area_px is not None else label


def no_mask_note(source: str, what: str) -> str:
    """Why an input has no ``what`` (a DICOM SEG...): the bundle classifies whole slices."""
    return f"{source}: no {what} written: the bundle classifies whole slices and makes no tumour mask"


def _draw_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    size = max(12, img.width // 22)
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        font = ImageFont.load_default()
    _, _, right, bottom = draw.textbbox((4, 4), text, font=font)
    draw.rectangle((0, 0, right + 4, bottom + 4), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 0), font=font)
    return np.asarray(img)


def overlay_image(image: np.ndarray, result: SliceResult) -> np.ndarray:
    """H'×W'×3 uint8: the slice (upscaled if small) with the predicted mask outlined in red and
    the caption."""
    mask = result.mask if result.mask is not None else np.zeros(image.shape[:2], np.uint8)
    factor = max(1, math.ceil(MIN_OVERLAY_SIDE / max(image.shape[:2])))
    if factor > 1:
        image = image.repeat(factor, 0).repeat(factor, 1)
        mask = mask.repeat(factor, 0).repeat(factor, 1)
    width = max(1, max(image.shape[:2]) // 256)
    return _draw_caption(overlay_rgb(image, pred=mask, width=width), caption(result))


def gradcam_image(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """H×W×3 uint8: the grayscale slice blended with a jet colour map of the [0,1] heat map."""
    from matplotlib import colormaps

    gray = to_gray_uint8(image).astype(np.float32)[..., None] / 255.0
    colour = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    alpha = 0.6 * np.clip(heat, 0, 1)[..., None]
    blend = (1 - alpha) * gray + alpha * colour
    return _upscale((blend * 255).round().astype(np.uint8))


def write_slice_files(
    image: np.ndarray, result: SliceResult, out_dir: Path, prefix: str, with_mask: bool = True
) -> None:
    """Overlay, mask (unless ``with_mask`` is False) and (if computed) Grad-CAM PNGs of one slice;
    paths go to ``result.outputs``."""
    mask = result.mask if result.mask is not None else np.zeros(image.shape[:2], np.uint8)
    result.outputs["overlay"] = _save_png(out_dir / f"{prefix}_overlay.png", overlay_image(image, result))
    if with_mask:
        result.outputs["mask"] = _save_png(out_dir / f"{prefix}_mask.png", (mask > 0).astype(np.uint8) * 255)
    if result.heatmap is not None:
        result.outputs["gradcam"] = _save_png(
            out_dir / f"{prefix}_gradcam.png", gradcam_image(image, result.heatmap)
        )


def view_affine(scan: Scan) -> np.ndarray:
    """4×4 RAS affine of a non-NIfTI volume laid out column × row × slice: the view's columns run
    to the patient's left, rows to posterior, slices upward (unknown spacings are 1 mm)."""
    row, col = scan.spacing or (1.0, 1.0)
    return np.diag([-float(col), -float(row), float(scan.slice_spacing or 1.0), 1.0])


def write_nifti_mask(scan: Scan, masks: np.ndarray, path: Path) -> str:
    """Save N×H×W masks as a uint8 NIfTI: in the input's shape, affine and header for NIfTI input;
    for DICOM with geometry, voxel (column, row, slice) with the headers' affine (``scan.affine``);
    else in the voxel order and affine of :func:`view_affine`."""
    import nibabel as nib

    if scan.nifti is not None:
        affine, header, shape = scan.nifti
        volume = view_to_nifti(masks.astype(np.uint8), affine).reshape(shape)
        header = header.copy()
        header.set_data_dtype(np.uint8)
    elif scan.affine is not None:
        affine = scan.affine
        volume = np.ascontiguousarray(np.transpose(masks.astype(np.uint8), (2, 1, 0)))
        header = nib.Nifti1Header()
        header.set_data_dtype(np.uint8)
    else:
        affine = view_affine(scan)
        volume = view_to_nifti(masks.astype(np.uint8), affine)
        header = nib.Nifti1Header()
        header.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(volume, affine, header)
    if scan.nifti is None and scan.affine is not None:  # scanner coordinates, as dcm2niix writes them
        img.set_qform(affine, code="scanner")
        img.set_sform(affine, code="scanner")
    img.header.set_slope_inter(1, 0)
    data = gzip.compress(img.to_bytes())

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)
    return str(path)


def write_input_files(
    scan: Scan,
    result: AnalysisResult,
    out_dir: Path,
    dicom_seg: bool = False,
    report: ReportContext | None = None,
    segmented: bool = True,
) -> None:
    """Every per-input file of ``result`` (see the module doc); paths go to ``result.outputs``,
    with ``dicom_seg`` the SEG's to ``outputs["dicom_seg"]`` or why there is none to ``notes``;
    with ``report`` the HTML report's (written last but for the JSON) to ``outputs["report"]``;
    ``segmented=False`` (a classify-only bundle: no masks) leaves out every mask file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = result.name
    masks = np.stack(
        [s.mask if s.mask is not None else np.zeros(scan.shape, np.uint8) for s in result.slices]
    )
    if scan.kind == "image":
        s = result.slices[0]
        write_slice_files(scan.slices[0], s, out_dir, name, with_mask=segmented)
        result.outputs.update(s.outputs)
    else:
        for s in result.slices:
            if s.tumour:
                write_slice_files(scan.slices[s.index], s, out_dir, f"{name}_s{s.index:03d}", segmented)
        if segmented:
            result.outputs["mask_nifti"] = write_nifti_mask(scan, masks, out_dir / f"{name}_mask.nii.gz")
    if dicom_seg and not segmented:
        result.notes.append(no_mask_note(scan.source, "DICOM SEG"))
    elif dicom_seg:
        _write_seg(scan, result, masks, out_dir / f"{name}{SEG_SUFFIX}")
    if report is not None:
        result.outputs["report"] = write_report(scan, result, report, out_dir / f"{name}{REPORT_SUFFIX}")
    json_path = out_dir / f"{name}.json"
    result.outputs["json"] = str(json_path)
    atomic_write_json(json_path, result.to_dict())


def _write_seg(scan: Scan, result: AnalysisResult, masks: np.ndarray, path: Path) -> None:
    """The input's DICOM SEG, or a note saying why it has none (the other outputs stand)."""
    refusal = seg_refusal(scan, masks)
    if refusal is None:
        try:
            result.outputs["dicom_seg"] = write_dicom_seg(scan, masks, result.label, path)
        except (
            ValueError,
            AttributeError,
            TypeError,
            KeyError,
            NotImplementedError,
        ) as exc:  # highdicom: headers it cannot use
            refusal = f"{scan.source}: no DICOM SEG written: {exc}"
    if refusal is not None:
        result.notes.append(refusal)


def _probs(prefix: str, probs: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in probs.items()}


def _row(r: AnalysisResult) -> dict[str, Any]:
    return {
        "input": r.input, "ok": r.ok, "error": r.error, "kind": r.kind if r.ok else "",
        "n_slices": len(r.slices) if r.ok else None, "tumour": r.tumour, "class": r.label,
        "majority_class": r.majority_label, "area_px": r.area_px, "area_mm2": r.area_mm2,
        "volume_mm3": r.volume_mm3, "bbox": " ".join(map(str, r.bbox)) if r.bbox else "",
        "uncertainty_segmentation": r.uncertainty.segmentation,
        "uncertainty_classification": r.uncertainty.classification,
        **_probs("prob_", r.probabilities), **_probs("gate_prob_", r.gate_probabilities),
        **_probs("cnn_prob_", r.cnn_probabilities),
        "input_distance": r.input_distance, "warning": r.warning, "notes": " | ".join(r.notes),
        "json": r.outputs.get("json", ""),
    }  # fmt: skip


def _slice_row(r: AnalysisResult, s: SliceResult) -> dict[str, Any]:
    return {
        "input": r.input, "slice": s.index, "skipped": s.skipped, "tumour": s.tumour, "class": s.label,
        "area_px": s.area_px, "area_mm2": s.area_mm2, "bbox": " ".join(map(str, s.bbox)) if s.bbox else "",
        "uncertainty_segmentation": s.uncertainty.segmentation,
        "uncertainty_classification": s.uncertainty.classification,
        **_probs("prob_", s.probabilities), **_probs("gate_prob_", s.gate_probabilities),
        **_probs("cnn_prob_", s.cnn_probabilities),
        "overlay": s.outputs.get("overlay", ""),
    }  # fmt: skip


def csv_text(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would read as a formula (it
    starts with ``= + - @``, tab or carriage return; OWASP CSV-injection advice); else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with :func:`csv_text` applied to every cell and column name."""
    safe = frame.map(csv_text)
    safe.columns = [csv_text(c) for c in frame.columns]
    return safe


def write_tables(results: list[AnalysisResult], out_dir: Path) -> dict[str, str]:
    """``analysis.csv`` (one row per input, failed ones with their error) and ``slices.csv``."""
    paths = {"csv": out_dir / "analysis.csv", "slices_csv": out_dir / "slices.csv"}
    frames = {
        "csv": csv_safe(pd.DataFrame([_row(r) for r in results])),
        "slices_csv": csv_safe(pd.DataFrame([_slice_row(r, s) for r in results if r.ok for s in r.slices])),
    }
    for key, frame in frames.items():

        def write(tmp: Path, f: pd.DataFrame = frame) -> None:
            f.to_csv(tmp, index=False)

        atomic_write(paths[key], write)
    return {k: str(p) for k, p in paths.items()}
