"""The opencv-grabcut baseline: a real registered Predictor."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference import Click, build_predictor, list_methods
from inference.evaluation.baselines import GrabCutPredictor
from inference.evaluation.metrics import iou


def disk_image(size=96, radius=25, seed=0):
    """A reddish disk on a bluish background with mild noise; returns (rgb, gt)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:size, :size]
    gt = (xx - size // 2) ** 2 + (yy - size // 2) ** 2 <= radius**2
    image = np.empty((size, size, 3), dtype=np.float32)
    image[:] = (40, 70, 160)
    image[gt] = (200, 60, 50)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), gt


def test_registered_and_ignores_backbone_and_device():
    assert "opencv-grabcut" in list_methods()
    predictor = build_predictor("opencv-grabcut", backbone="anything", device="cuda:0")
    assert isinstance(predictor, GrabCutPredictor)


def test_one_click_segments_a_two_colour_disk():
    image, gt = disk_image()
    predictor = build_predictor("opencv-grabcut")
    predictor.set_image(image)
    result = predictor.predict([Click(x=48, y=48, positive=True)])
    assert result.mask.shape == gt.shape and result.mask.dtype == bool
    assert iou(result.mask, gt) > 0.9


def test_working_size_is_capped_and_the_mask_comes_back_full_size():
    image, gt = disk_image(size=200, radius=50)
    predictor = GrabCutPredictor(max_side=64, probable_radius=10)
    predictor.set_image(image)
    assert predictor._work.shape[:2] == (64, 64)
    mask = predictor.predict([Click(x=100, y=100)]).mask
    assert mask.shape == (200, 200) and iou(mask, gt) > 0.9


def test_trimap_seeds():
    image, _ = disk_image()
    predictor = GrabCutPredictor(seed_radius=2, probable_radius=10)
    predictor.set_image(image)
    trimap = predictor.trimap([Click(x=48, y=48), Click(x=10, y=48, positive=False)])
    assert trimap[48, 48] == cv2.GC_FGD and trimap[48, 10] == cv2.GC_BGD
    assert trimap[48, 56] == cv2.GC_PR_FGD and trimap[48, 70] == cv2.GC_PR_BGD
    assert (trimap[0] == cv2.GC_BGD).all() and (trimap[:, -1] == cv2.GC_BGD).all()


def test_deterministic_and_negative_only_is_empty():
    image, _ = disk_image(seed=1)
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    clicks = [Click(x=48, y=48), Click(x=60, y=20, positive=False)]
    first = predictor.predict(clicks).mask
    cv2.setRNGSeed(12345)  # someone else moves OpenCV's global generator in between
    assert np.array_equal(first, predictor.predict(clicks).mask)
    assert not predictor.predict([Click(x=5, y=5, positive=False)]).mask.any()


def test_bad_max_side_is_refused():
    with pytest.raises(ValueError):
        GrabCutPredictor(max_side=2)
