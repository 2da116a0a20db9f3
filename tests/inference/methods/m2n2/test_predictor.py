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


def test_a_prior_mask_is_refined_where_clicks_decide_and_kept_elsewhere(predictor):
    img, gt = _scene()
    predictor.set_image(img)
    prior = np.zeros_like(gt)
    prior[30:60, 40:80] = True  # an import that misses part of the square
    assert np.array_equal(predictor.predict([], prior=prior).mask, prior)
    # positives only (refine_band 0): the click's region is added, nothing of the prior is lost
    grown = predictor.predict([Click(x=90, y=68)], prior=prior).mask
    assert grown[68, 90] and (grown >= prior).all()
    # a lone negative inside: its region is cut out, nothing is added; the prior's deepest pixel
    # speaks for the prior in the vote, so the negative's region cannot take all of it
    cut = predictor.predict([Click(x=42, y=32, positive=False)], prior=prior).mask
    assert not cut[32, 42] and (cut <= prior).all() and cut.any()
    with pytest.raises(ValueError, match="prior mask is"):
        predictor.predict([Click(x=5, y=5)], prior=prior[:10])
    # through predict_objects: an object's PriorMask goes to predict; one with only a prior
    # keeps it, an object with none starts from nothing
    from inference import PriorMask

    out = predictor.predict_objects(
        [
            PriorMask(prior, object_id=1),
            Click(x=90, y=68, object_id=1),
            PriorMask(prior, object_id=2),
        ]
    )
    assert np.array_equal(out[1].mask, grown) and np.array_equal(out[2].mask, prior)
