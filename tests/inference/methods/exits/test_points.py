import numpy as np
import pytest

from inference.methods.exits.points import (
    box_of,
    crop_image,
    crop_window,
    extreme_points_from_mask,
    paste_probability,
    points_from_coco,
    points_to_coco,
    shift_inward,
)
from inference.structures import ExtremePoints


def test_extreme_points_from_a_mask_are_the_true_extremes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = np.zeros((40, 50), bool)
        for _ in range(3):
            y0, x0 = rng.integers(0, 35), rng.integers(0, 45)
            mask[y0 : y0 + rng.integers(1, 8), x0 : x0 + rng.integers(1, 8)] = True
        p = extreme_points_from_mask(mask)
        ys, xs = np.nonzero(mask)
        assert p.left[0] == xs.min() and p.right[0] == xs.max()
        assert p.top[1] == ys.min() and p.bottom[1] == ys.max()
        for x, y in (p.left, p.right, p.top, p.bottom):
            assert mask[int(y), int(x)], "every extreme point lies on the object"
        assert box_of(p) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_empty_mask_has_no_extreme_points():
    with pytest.raises(ValueError):
        extreme_points_from_mask(np.zeros((4, 4), bool))


def test_coco_forms_round_trip():
    p = ExtremePoints(left=(1, 5), right=(9, 4), top=(5, 0), bottom=(6, 8))
    assert points_from_coco(points_to_coco(p)) == p
    assert points_from_coco([[5, 0], [1, 5], [6, 8], [9, 4]]) == p  # ExtremeNet order


def test_shift_inward_moves_along_the_normal_and_not_past_the_centre():
    p = ExtremePoints(left=(0, 5), right=(20, 5), top=(10, 0), bottom=(10, 4))
    shifted = shift_inward(p, 3.0)
    np.testing.assert_allclose(shifted, [[3, 5], [17, 5], [10, 2], [10, 2]])


def test_paste_of_a_crop_box_gives_back_the_box():
    image = np.zeros((60, 80, 3), np.uint8)
    box = (10.0, 20.0, 50.0, 44.0)
    window = crop_window(box, 64)
    assert crop_image(image, window).shape == (64, 64, 3)
    full = paste_probability(np.ones((16, 16), np.float32), window, (60, 80), box)
    expected = np.zeros((60, 80), bool)
    expected[20:44, 10:50] = True
    assert ((full > 0.5) == expected).all()


def test_crop_beyond_the_border_wraps_around():
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 0] = 255  # left column white
    window = crop_window((8.0, 0.0, 10.0, 10.0), 10, margins=(0, 0, 1.0, 0))
    crop = crop_image(image, window)  # window x ∈ [8, 11): column 10 → 0
    assert crop[:, -1].min() > 200 and crop[:, 0].max() == 0
