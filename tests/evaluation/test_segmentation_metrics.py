"""Segmentation metrics against hand-counted values on tiny masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from braintumor.evaluation import (
    SegmentationAccumulator,
    fill_holes,
    hd95,
    keep_largest_component,
    postprocess,
    segmentation_scores,
)


def test_scores_on_hand_counted_4x4() -> None:
    target = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    pred = np.array([[0, 1, 1, 1], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # TP = 2, FP = 3, FN = 2
    scores = segmentation_scores(pred, target)
    assert scores["dice"] == pytest.approx(4 / 9)
    assert scores["iou"] == pytest.approx(2 / 7)
    assert scores["precision"] == pytest.approx(2 / 5)
    assert scores["recall"] == pytest.approx(1 / 2)
    assert math.isfinite(scores["hd95"])


def test_scores_accept_torch_bool() -> None:
    target = torch.zeros(4, 4, dtype=torch.bool)
    target[:2, :2] = True
    scores = segmentation_scores(target.clone(), target)
    assert scores == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0, "hd95": 0.0}


EMPTY = np.zeros((4, 4), dtype=np.uint8)
BLOB = np.pad(np.ones((2, 2), dtype=np.uint8), 1)


@pytest.mark.parametrize(
    ("pred", "target", "expected"),
    [
        (EMPTY, EMPTY, 1.0),  # both empty: a correct "no tumour"
        (EMPTY, BLOB, 0.0),  # missed tumour
        (BLOB, EMPTY, 0.0),  # false alarm
    ],
)
def test_empty_mask_convention(pred: np.ndarray, target: np.ndarray, expected: float) -> None:
    scores = segmentation_scores(pred, target)
    for name in ("dice", "iou", "precision", "recall"):
        assert scores[name] == expected, name
    assert math.isnan(scores["hd95"])


def test_non_binary_mask_is_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        segmentation_scores(np.full((4, 4), 0.7), EMPTY)


def test_hd95_square_shifted_by_one_pixel() -> None:
    target = np.zeros((8, 8), dtype=bool)
    target[2:5, 2:5] = True
    pred = np.roll(target, 1, axis=1)
    # every outline pixel of one square is 0 or 1 pixel from the other outline
    assert hd95(pred, target) == pytest.approx(1.0)


def test_hd95_lines_four_apart_and_spacing() -> None:
    target = np.zeros((8, 8), dtype=bool)
    target[1:6, 1] = True
    pred = np.zeros_like(target)
    pred[1:6, 5] = True
    assert hd95(pred, target) == pytest.approx(4.0)
    assert hd95(pred, target, spacing=(1.0, 0.5)) == pytest.approx(2.0)


def test_hd95_3d_uses_slice_spacing() -> None:
    target = np.zeros((3, 6, 6), dtype=bool)
    target[0, 1:4, 1:4] = True
    pred = np.roll(target, 2, axis=0)  # same square two slices further
    assert hd95(pred, target) == pytest.approx(2.0)
    assert hd95(pred, target, spacing=(3.0, 1.0, 1.0)) == pytest.approx(6.0)


def _two_patient_batches() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((4, 4, 4), dtype=np.uint8)
    pred = np.zeros_like(truth)
    truth[0, :3, :] = 1  # p1 slice A: 12 px, predicted exactly
    pred[0, :3, :] = 1
    truth[1, :2, :2] = 1  # p1 slice B: 4 px truth, 4 px prediction elsewhere
    pred[1, 2:, 2:] = 1
    # p1 slice C (index 2): both empty
    truth[3, 1:3, 1:3] = 1  # p2: one perfect slice
    pred[3, 1:3, 1:3] = 1
    return pred, truth


def test_accumulator_volumetric_dice_differs_from_slice_mean() -> None:
    pred, truth = _two_patient_batches()
    acc = SegmentationAccumulator()
    acc.add(torch.from_numpy(pred[:2, None]), torch.from_numpy(truth[:2, None]), ["p1"] * 2, ["a", "b"])
    acc.add(pred[2:], truth[2:], ["p1", "p2"], ["c", "d"])

    slices = acc.per_slice()
    assert slices["dice"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert slices["true_area"].tolist() == [12, 4, 0, 4]
    assert slices["pred_area"].tolist() == [12, 4, 0, 4]
    assert slices.loc[0, "hd95"] == 0.0
    assert math.isnan(slices.loc[2, "hd95"])

    patients = acc.per_patient().set_index("patient_id")
    # p1 volume: TP = 12, FP = 4, FN = 4
    p1 = patients.loc["p1"]
    assert p1["n_slices"] == 3
    assert p1["dice"] == pytest.approx(24 / 32)
    assert p1["iou"] == pytest.approx(12 / 20)
    assert p1["precision"] == pytest.approx(12 / 16)
    assert p1["recall"] == pytest.approx(12 / 16)
    assert (p1["true_volume"], p1["pred_volume"]) == (16, 16)
    assert math.isfinite(p1["hd95"])
    p1_slice_mean = slices.loc[slices["patient_id"] == "p1", "dice"].mean()
    assert p1_slice_mean == pytest.approx(2 / 3) and p1_slice_mean != p1["dice"]

    summary = acc.summary()
    assert summary["dice_per_patient_mean"] == pytest.approx(0.875)
    assert summary["dice_per_patient_median"] == pytest.approx(0.875)
    assert summary["dice_per_patient_std"] == pytest.approx(0.125)
    assert summary["dice_per_slice_mean"] == pytest.approx(0.75)
    assert summary["recall"] == pytest.approx(0.875)
    assert (summary["n_patients"], summary["n_slices"], summary["n_hd95"]) == (2, 4, 2)
    # a missed patient (tumour, empty prediction) scores Dice 0 and has no HD95: the count says so
    acc.add(np.zeros((1, 4, 4), np.uint8), truth[3:], ["p3"], ["e"])
    summary = acc.summary()
    assert (summary["n_patients"], summary["n_hd95"]) == (3, 2)
    assert summary["dice_per_patient_mean"] == pytest.approx(1.75 / 3)


def test_accumulator_orders_slices_and_can_skip_masks() -> None:
    pred, truth = _two_patient_batches()
    in_order = SegmentationAccumulator()
    in_order.add(pred[:3], truth[:3], ["p1"] * 3, ["a", "b", "c"], slice_indices=[0, 1, 2])
    shuffled = SegmentationAccumulator()
    shuffled.add(pred[[2, 0, 1]], truth[[2, 0, 1]], ["p1"] * 3, ["c", "a", "b"], [2, 0, 1])
    assert shuffled.per_patient()["hd95"][0] == pytest.approx(in_order.per_patient()["hd95"][0])

    light = SegmentationAccumulator(store_masks=False)
    light.add(pred[:3], truth[:3], ["p1"] * 3, ["a", "b", "c"])
    slice_hd95 = light.per_slice()["hd95"]
    assert light.per_patient()["hd95"][0] == pytest.approx(np.nanmean(slice_hd95))


def test_accumulator_rejects_mismatched_ids() -> None:
    with pytest.raises(ValueError, match="patient_ids"):
        SegmentationAccumulator().add(EMPTY[None], EMPTY[None], ["p1", "p2"], ["a"])


def test_keep_largest_component() -> None:
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[0:2, 0:2] = 1  # 4 px
    mask[4:7, 4:7] = 1  # 9 px
    out = keep_largest_component(mask)
    expected = np.zeros_like(mask)
    expected[4:7, 4:7] = 1
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(keep_largest_component(EMPTY), EMPTY)


def test_fill_holes_and_postprocess_torch() -> None:
    ring = np.ones((5, 5), dtype=np.uint8)
    ring[1:4, 1:4] = 0
    ring = np.pad(ring, 2)
    filled = fill_holes(ring)
    assert filled.sum() == 25 and filled[4, 4] == 1
    blobs = torch.from_numpy(ring.copy())
    blobs[0, 0] = 1  # a stray pixel, not touching the ring
    out = postprocess(blobs)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
    np.testing.assert_array_equal(out.numpy(), filled)
    np.testing.assert_array_equal(fill_holes(ring[None]), filled[None])  # a 1×H×W mask, as stored


@pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside MONAI 1.6
def test_hd95_cropping_matches_monai_on_uncropped_masks() -> None:
    from monai.metrics import compute_hausdorff_distance

    rng = np.random.default_rng(0)
    pred, target = rng.random((2, 12, 12)) < 0.3  # scattered pixels, touching the border
    expected = compute_hausdorff_distance(
        torch.from_numpy(pred[None, None]).float(),
        torch.from_numpy(target[None, None]).float(),
        include_background=True,
        percentile=95,
        spacing=[0.7, 1.3],
    )
    assert hd95(pred, target, spacing=(0.7, 1.3)) == pytest.approx(float(expected[0, 0]))


@pytest.mark.parametrize("seed", range(6))
def test_postprocess_in_the_box_equals_the_whole_array(seed: int) -> None:
    """Working inside the foreground's box gives exactly scipy's whole-array result, also for
    blobs touching the border, rings (holes) and 3D masks."""
    from scipy import ndimage

    from braintumor.evaluation.postprocess import fill_holes, keep_largest_component

    rng = np.random.default_rng(seed)
    shape = (40, 48) if seed % 2 == 0 else (12, 16, 14)
    mask = ndimage.binary_opening(rng.random(shape) > 0.55)
    if seed % 3 == 0:
        mask[0, ...] = True  # foreground on the border
    if mask.ndim == 2:
        mask[10:20, 10:20] = True
        mask[13:17, 13:17] = False  # an enclosed hole
    structure = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    labels, n = ndimage.label(mask, structure=structure)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    expected_largest = labels == int(np.argmax(sizes)) if n > 1 else mask
    assert np.array_equal(keep_largest_component(mask), expected_largest)
    assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert np.array_equal(fill_holes(mask.astype(np.uint8)), ndimage.binary_fill_holes(mask).astype(np.uint8))
    empty = np.zeros(shape, bool)
    assert not fill_holes(empty).any() and not keep_largest_component(empty).any()


def test_postprocess_by_patient_keeps_the_largest_3d_component() -> None:
    from braintumor.evaluation import postprocess_by_patient

    # Patient "a": a 3-slice tumour (2×2 per slice, 12 voxels) and a 3×3 false positive (9 voxels)
    # on one slice only. Per slice, the 3×3 blob wins on that slice; per patient, the tumour wins.
    slices = [np.zeros((8, 8), np.uint8) for _ in range(3)]
    for s in slices:
        s[1:3, 1:3] = 1
    slices[1][5:8, 5:8] = 1
    slices[1][6, 6] = 0  # a hole, filled slice by slice afterwards (then dropped with its blob)
    other = np.zeros((8, 8), np.uint8)
    other[4:6, 4:6] = 1  # patient "b" is independent of "a"
    masks = [slices[2], other, slices[0], slices[1]]  # unordered on purpose
    out = postprocess_by_patient(masks, ["a", "b", "a", "a"], [2.0, 0.0, 0.0, 1.0])
    for k in (0, 2, 3):
        assert out[k].sum() == 4 and out[k][1:3, 1:3].all()
    assert np.array_equal(out[1], other)
    per_slice = postprocess(slices[1], largest=True, fill=True)
    assert per_slice.sum() == 9 and not per_slice[1:3, 1:3].any()  # the 2D rule keeps the wrong blob
    filled = postprocess_by_patient([slices[1]], ["a"], [0.0], largest=False, fill=True)[0]
    assert filled[6, 6] == 1 and filled.dtype == np.uint8
    with pytest.raises(ValueError, match="one of each per slice"):
        postprocess_by_patient(masks, ["a"], [0.0])


def test_a_missing_slice_separates_3d_components() -> None:
    from braintumor.evaluation import postprocess_by_patient

    small, large = np.zeros((6, 6), np.uint8), np.zeros((6, 6), np.uint8)
    small[1:3, 1:3] = 1
    large[1:4, 1:4] = 1
    kept = postprocess_by_patient([small, large], ["a", "a"], [4.0, 6.0], fill=False)  # slice 5 missing
    assert kept[0].sum() == 0 and kept[1].sum() == 9
    touching = postprocess_by_patient([small, large], ["a", "a"], [4.0, 5.0], fill=False)
    assert [m.sum() for m in touching] == [4, 9]
    positions = postprocess_by_patient([small, large], ["a", "a"], [0.5, 2.0], fill=False)
    assert [m.sum() for m in positions] == [4, 9]  # keys that are not slice numbers: side by side


def test_component_fraction_keeps_every_part_of_a_split_tumour() -> None:
    from braintumor.evaluation import postprocess_by_patient

    mask = np.zeros((10, 10), np.uint8)
    mask[0:3, 0:3] = 1  # 9 px, the largest
    mask[5:7, 5:7] = 1  # 4 px: 0.44 of the largest
    mask[9, 0] = 1  # 1 px: 0.11 of the largest
    assert postprocess(mask, fill=False, min_fraction=1.0).sum() == 9
    assert postprocess(mask, fill=False, min_fraction=0.4).sum() == 13
    assert postprocess(mask, fill=False, min_fraction=0.1).sum() == 14
    assert postprocess(mask, fill=False, min_fraction=0.0).sum() == 14
    volume = postprocess_by_patient([mask, mask], ["a", "a"], [0.0, 1.0], fill=False, min_fraction=0.4)
    assert [m.sum() for m in volume] == [13, 13]  # 3D parts of 18, 8 and 2 voxels: 0.4 of 18 keeps two
    with pytest.raises(ValueError, match="min_fraction"):
        postprocess(mask, min_fraction=1.5)
