"""opencv-grabcut refines a prior mask: it is GrabCut's initial trimap."""

from __future__ import annotations

import cv2
import numpy as np

from inference import Click, build_predictor


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    img = rng.integers(20, 60, size=(80, 100, 3), dtype=np.uint8)
    gt = np.zeros((80, 100), bool)
    gt[10:80, 20:70] = True  # cut by the bottom edge of the frame
    img[gt] = rng.integers(190, 230, size=(gt.sum(), 3), dtype=np.uint8)
    return img, gt


def test_trimap_starts_from_the_prior_and_keeps_its_frame_edge():
    img, gt = _scene()
    predictor = build_predictor("opencv-grabcut")
    predictor.set_image(img)
    prior = gt.copy()
    prior[50:, :] = False  # the import misses the lower part
    trimap = predictor.trimap([], prior)
    assert (trimap[prior] == cv2.GC_PR_FGD).all()
    assert trimap[40, 5] == cv2.GC_PR_BGD and trimap[0, 5] == cv2.GC_BGD
    bottom = predictor.trimap([], gt)
    assert bottom[79, 40] == cv2.GC_PR_FGD and bottom[79, 5] == cv2.GC_BGD


def test_a_click_in_the_missing_part_completes_the_prior():
    img, gt = _scene()
    predictor = build_predictor("opencv-grabcut")
    predictor.set_image(img)
    prior = gt.copy()
    prior[50:, :] = False
    assert np.array_equal(predictor.predict([], prior=prior).mask, prior)
    mask = predictor.predict([Click(x=45, y=70)], prior=prior).mask
    inter, union = (mask & gt).sum(), (mask | gt).sum()
    assert inter / union > 0.95
    without = predictor.predict([Click(x=45, y=70)]).mask
    assert mask.sum() >= without.sum()
