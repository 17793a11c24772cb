"""DICOM Segmentation (SEG) of an analysed DICOM input, written with highdicom (``[dicom]`` extra).

``<name>_seg.dcm`` is a binary SEG of the input's study (new series and instance UIDs, manufacturer
``braintumor``, content qualification RESEARCH) that 3D Slicer, OHIF, ITK-SNAP and a PACS show over
the source series. It has one segment, ``tumour``: property category SNOMED CT 49755003
"Morphologically Altered Structure" (pydicom's ``MorphologicallyAbnormalStructure``), property type
SNOMED CT 108369006 "Neoplasm", algorithm ``braintumor`` at the package version (family: Artificial
Intelligence), and the predicted class in its description (``tumour (glioma)``; ``tumour`` for a
segmentation-only bundle). Frames exist only for slices with tumour; each refers to its source
slice (``ReferencedSOPInstanceUID``) and carries that slice's position and orientation.

A SEG needs DICOM source images and at least one tumour pixel: :func:`seg_refusal` says why an
input gets none (a NIfTI, PNG/TIFF or slice-folder input; no tumour found).

Example:
    >>> write_dicom_seg(scan, masks, "glioma", out / "p1_seg.dcm")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from braintumor import __version__
from braintumor.extras import require
from braintumor.inference.results import TUMOUR_LABEL
from braintumor.inference.sources import Scan
from braintumor.io_utils import atomic_write

SEG_SUFFIX = "_seg.dcm"
NEEDS_DICOM = "DICOM SEG needs DICOM source images"
SERIES_NUMBER_OFFSET = 1000
"""The SEG's series number: the source's plus this (viewers list it after the source series)."""
EMPTY_TYPE2 = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
    "StudyDate", "StudyTime", "ReferringPhysicianName",
)  # fmt: skip
"""Patient and study attributes a SEG copies from its source (type 2: present, maybe empty)."""


def seg_refusal(scan: Scan, masks: np.ndarray) -> str | None:
    """Why ``scan`` gets no DICOM SEG (a sentence naming the input), or None when it can have one.

    Args:
        scan: the analysed input.
        masks: N×H×W {0,1} masks of its slices, in slice order.
    """
    if scan.dicom is None:
        if scan.nifti is not None:
            what = "a NIfTI volume (its mask is <name>_mask.nii.gz)"
        elif scan.kind == "volume":
            what = "a folder of numbered image slices (its mask is <name>_mask.nii.gz)"
        else:
            what = "an image file, not DICOM (its mask is <name>_mask.png)"
        return f"{scan.source}: no DICOM SEG written: {NEEDS_DICOM}, and this input is {what}"
    if not np.any(masks):
        return f"{scan.source}: no DICOM SEG written: no tumour found (a SEG holds only frames with tumour)"
    return None


def segment_description(label: str | None) -> str:
    """``tumour (glioma)``; ``tumour`` when the class is unknown or is just ``tumour``."""
    return f"{TUMOUR_LABEL} ({label})" if label and label != TUMOUR_LABEL else TUMOUR_LABEL


def _sources(headers: list[Any]) -> list[Any]:
    """The source headers, copied with empty values for missing type-2 patient/study attributes
    (highdicom reads them; anonymised files may drop them); the originals when none is missing."""
    if all(keyword in ds for ds in headers for keyword in EMPTY_TYPE2):
        return headers
    filled = [copy.deepcopy(ds) for ds in headers]
    for ds in filled:
        for keyword in EMPTY_TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, None)
    return filled


def build_segmentation(scan: Scan, masks: np.ndarray, label: str | None) -> Any:
    """The SEG dataset (a ``highdicom.seg.Segmentation``) of ``scan``'s masks (see the module doc).

    Args:
        scan: a DICOM input (``scan.dicom`` set).
        masks: N×H×W {0,1} masks in ``scan.dicom``'s slice order.
        label: the predicted class, for the segment description.

    Raises:
        ValueError: from highdicom, when the source headers lack what a SEG needs (e.g. a
            FrameOfReferenceUID).
        MissingExtraError: ``highdicom`` is not installed (``pip install 'braintumor[dicom]'``).
    """
    if scan.dicom is None:
        raise ValueError(f"{scan.source}: {NEEDS_DICOM}")
    hd = require("highdicom", "dicom", f"writing the DICOM SEG of {scan.source}")
    codes = require("pydicom.sr.codedict", "dicom", f"writing the DICOM SEG of {scan.source}").codes
    algorithm = hd.AlgorithmIdentificationSequence(
        name="braintumor", family=codes.DCM.ArtificialIntelligence, version=__version__
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=TUMOUR_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    segment.SegmentDescription = segment_description(label)
    sources = _sources(scan.dicom)
    number = int(getattr(sources[0], "SeriesNumber", 0) or 0) + SERIES_NUMBER_OFFSET
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=(np.asarray(masks) > 0).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="braintumor",
        manufacturer_model_name="braintumor",
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"braintumor {segment_description(label)}"[:64],
        content_label="TUMOUR",
        content_description="braintumor automatic tumour segmentation",
        content_qualification="RESEARCH",
        omit_empty_frames=True,
    )


def write_dicom_seg(scan: Scan, masks: np.ndarray, label: str | None, path: Path) -> str:
    """Write :func:`build_segmentation` to ``path`` atomically; returns the path.

    Raises:
        ValueError: as :func:`build_segmentation`.
        MissingExtraError: ``highdicom`` is not installed.
    """
    dataset = build_segmentation(scan, masks, label)

    def write(tmp: Path) -> None:
        dataset.save_as(tmp, enforce_file_format=True)

    atomic_write(path, write)
    return str(path)
