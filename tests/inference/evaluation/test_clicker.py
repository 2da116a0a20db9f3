"""The click simulator on synthetic masks whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inference import Click
from inference.evaluation.clicker import Clicker, ClickSimulator, padded_distance


def square(size=50, top=10, left=10, side=21) -> np.ndarray:
    gt = np.zeros((size, size), dtype=bool)
    gt[top : top + side, left : left + side] = True
    return gt


def test_first_click_is_the_centre_of_a_square():
    clicker = Clicker(square(side=21))  # rows/cols 10..30: centre (20, 20)
    assert clicker.make_next_click() == Click(x=20, y=20, positive=True)


def test_ties_go_to_the_first_pixel_in_row_major_order():
    # an even 20×20 square (10..29) has four equally deep centre pixels
    clicker = Clicker(square(side=20))
    assert clicker.make_next_click(None) == Click(x=19, y=19, positive=True)


def test_padding_makes_the_image_border_a_boundary():
    gt = np.ones((9, 9), dtype=bool)  # the whole image is the object
    assert padded_distance(gt)[0, 0] == 1 and padded_distance(gt)[4, 4] == 5
    assert Clicker(gt).make_next_click() == Click(x=4, y=4, positive=True)


def test_missed_strip_gets_a_positive_click_at_its_centre():
    gt = np.zeros((50, 50), dtype=bool)
    gt[10:41, 10:41] = True
    pred = gt.copy()
    pred[:, 30:] = False  # FN strip: rows 10..40, cols 30..40 (11 wide)
    clicker = Clicker(gt, exclusion_radius=5)
    clicker.make_next_click()  # (25, 25), far from the strip's centre
    # depth 6 along x=35 for y in 15..35; the first in row-major order is y=15
    assert clicker.make_next_click(pred) == Click(x=35, y=15, positive=True)


def test_spurious_blob_gets_a_negative_click_at_its_centre():
    gt = square()
    pred = gt.copy()
    yy, xx = np.ogrid[:50, :50]
    pred |= (xx - 42) ** 2 + (yy - 40) ** 2 <= 16  # an FP disk of radius 4 at (42, 40)
    clicker = Clicker(gt)
    clicker.make_next_click()
    assert clicker.make_next_click(pred) == Click(x=42, y=40, positive=False, object_id=0)


def test_equal_fn_and_fp_depth_goes_to_fp():
    gt = np.zeros((30, 60), dtype=bool)
    gt[5:16, 5:16] = True  # missed entirely (FN)
    pred = np.zeros_like(gt)
    pred[5:16, 40:51] = True  # predicted in the wrong place (FP): same shape, same depth
    sim = ClickSimulator(gt, exclusion_radius=None)
    assert sim.next_click(1, pred) == Click(x=45, y=10, positive=False, object_id=0)


def test_excluded_disk_is_respected():
    gt = square(side=21)
    empty = np.zeros_like(gt)
    for radius, min_gap in ((5, 5), (0, 1)):
        clicker = Clicker(gt, exclusion_radius=radius)
        first = clicker.make_next_click(empty)
        second = clicker.make_next_click(empty)  # the predictor still shows nothing
        gap = np.hypot(second.x - first.x, second.y - first.y)
        assert gap > radius and gap >= min_gap
    clicker = Clicker(gt, exclusion_radius=None)  # M2N2: nothing is excluded
    assert clicker.make_next_click(empty) == clicker.make_next_click(empty)


def test_radius_5_disk_excludes_exactly_the_disk():
    sim = ClickSimulator(square(side=21), exclusion_radius=5)
    sim.first_click(1)  # (20, 20)
    yy, xx = np.nonzero(~sim.not_clicked)
    dist2 = (xx - 20) ** 2 + (yy - 20) ** 2
    assert dist2.max() == 25 and len(xx) == np.count_nonzero(
        (np.arange(-5, 6)[:, None] ** 2 + np.arange(-5, 6)[None, :] ** 2) <= 25
    )


def test_ignore_band_is_never_clicked():
    gt = square(side=21)
    ignore = np.zeros_like(gt)
    ignore[5:45, 5:45] = True
    ignore[10:31, 10:31] = False  # a 5-px band around the object
    pred = np.zeros_like(gt)
    pred[0:50, 0:40] = True  # a huge FP, deepest inside the band's area
    clicker = Clicker(gt, ignore)
    first = clicker.make_next_click()
    assert not ignore[first.y, first.x]
    rng = np.random.default_rng(0)
    for _ in range(10):
        click = clicker.make_next_click(pred | (rng.random(gt.shape) < 0.3))
        assert click is not None and not ignore[click.y, click.x]


def test_perfect_prediction_leaves_nothing_to_click():
    gt = square()
    clicker = Clicker(gt)
    clicker.make_next_click()
    assert clicker.make_next_click(gt) is None and len(clicker) == 1


def test_the_simulator_is_deterministic():
    rng = np.random.default_rng(3)
    gt = square()
    preds = [rng.random(gt.shape) < 0.4 for _ in range(8)]

    def run():
        clicker = Clicker(gt)
        return [clicker.make_next_click(p) for p in [None, *preds]]

    assert run() == run()


def test_a_click_belongs_to_the_object_under_it():
    labels = np.zeros((40, 80), dtype=np.int32)
    labels[5:35, 5:35] = 1
    labels[5:35, 45:75] = 2
    sim = ClickSimulator(labels)
    assert sim.first_click(1) == Click(x=19, y=19, positive=True)
    pred_1 = labels > 0  # object 1's mask spills over object 2: an FP that lies on object 2
    placed = sim.next_click(1, pred_1)
    assert placed.object_id == 2 and placed.positive
    # max_dt: everything predicted as background → the deepest error is an object centre
    sim2 = ClickSimulator(labels)
    assert sim2.next_click_global(np.zeros_like(labels)).object_id == 1


def test_m2n2_clicker_uses_one_error_map():
    gt = np.zeros((40, 60), dtype=bool)
    gt[:, 5:30] = True
    pred = np.zeros_like(gt)
    pred[:, 24:36] = True  # FN cols 5..23 and FP cols 30..35, apart (cols 24..29 are right)
    ritm = ClickSimulator(gt, exclusion_radius=None).next_click(1, pred)
    joint = ClickSimulator(gt, exclusion_radius=None, separate_errors=False).next_click(1, pred)
    assert ritm == joint  # the FN block is the deepest either way

    pred2 = np.zeros_like(gt)
    pred2[:, 30:42] = True  # FP cols 30..41 touches FN cols 5..29: one error strip 5..41
    sep = ClickSimulator(gt, exclusion_radius=None).next_click(1, pred2)
    one = ClickSimulator(gt, exclusion_radius=None, separate_errors=False).next_click(1, pred2)
    assert sep == Click(x=17, y=12, positive=True)  # centre of the FN block alone
    assert one == Click(x=23, y=18, positive=True)  # centre of the joint strip, on the object


@pytest.mark.parametrize("bad", [np.zeros((3, 3, 3), dtype=bool)])
def test_bad_gt_is_refused(bad):
    with pytest.raises(ValueError):
        ClickSimulator(bad)
