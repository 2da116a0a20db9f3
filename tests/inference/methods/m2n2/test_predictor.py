"""M2N2 end to end on the tiny random effnet, and the boundary refinement on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from inference import Click, PredictorNotReady, build_predictor
from inference.methods.m2n2.boundary import refine_band


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    gt = np.zeros((96, 128), bool)
    gt[24:72, 32:96] = True
    img[gt] = rng.integers(190, 230, size=(gt.sum(), 3), dtype=np.uint8)
    return img, gt


@pytest.fixture(scope="module")
def predictor():
    return build_predictor("m2n2", backbone="tiny-effnet", refine_band=0)


def test_contract_and_click_cache(predictor):
    img, _ = _scene()
    with pytest.raises(PredictorNotReady):
        build_predictor("m2n2", backbone="tiny-effnet").predict([Click(x=1, y=1)])
    predictor.set_image(img)
    first = predictor.predict([Click(x=64, y=48)])
    assert first.mask.shape == (96, 128) and first.mask.dtype == bool and first.mask[48, 64]
    assert len(predictor._maps) == 1
    cached = dict(predictor._maps)
    predictor.predict([Click(x=64, y=48), Click(x=5, y=5, positive=False)])
    # the first click's map was reused, only the new one was computed
    assert len(predictor._maps) == 2 and predictor._maps[(64, 48)] is cached[(64, 48)]
    # undo: the result equals the one-click result; the dropped click's map stays cached
    # (another object, or a redo, may use it) up to map_cache_size maps
    again = predictor.predict([Click(x=64, y=48)])
    assert len(predictor._maps) == 2 and np.array_equal(again.mask, first.mask)
    predictor.map_cache_size = 1
    predictor.predict([Click(x=64, y=48)])
    assert list(predictor._maps) == [(64, 48)]  # the least recently used went first
    predictor.map_cache_size = 128
    with pytest.raises(ValueError, match="outside"):
        predictor.predict([Click(x=128, y=0)])
    assert not predictor.predict([Click(x=5, y=5, positive=False)]).mask.any()


def test_refinement_snaps_a_coarse_mask_to_the_colour_edge():
    img, gt = _scene()
    coarse = np.zeros_like(gt)
    coarse[28:76, 28:90] = True  # shifted by a few pixels, like an 8-px grid boundary
    refined = refine_band(img, coarse, [(48, 64, True)], band=8)

    def iou(a):
        return (a & gt).sum() / (a | gt).sum()

    assert iou(coarse) < 0.85 and iou(refined) > 0.97
    assert refine_band(img, np.zeros_like(gt), [], band=8).sum() == 0  # nothing to refine


def test_refined_predictor_runs_end_to_end():
    img, gt = _scene()
    p = build_predictor("m2n2", backbone="tiny-effnet", refine_band=8)
    p.set_image(img)
    mask = p.predict([Click(x=64, y=48)]).mask
    assert mask.shape == gt.shape and mask[48, 64]
