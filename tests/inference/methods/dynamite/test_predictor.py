"""The ``dynamite`` predictor on a tiny random model: exclusive masks, replays, edge cases."""
import numpy as np
import pytest
import torch

from inference import Click, build_predictor
from inference.evaluation.clicker import ObjectClick
from inference.evaluation.multi_instance import MultiInstancePredictor
from inference.methods.dynamite import DynaMITe, DynamiteConfig, DynamitePredictor


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)


def _model():
    torch.manual_seed(0)
    model = DynaMITe(DynamiteConfig.tiny())
    # zero the static background queries' content so that click queries win somewhere and the
    # masks are not trivially empty (with random weights the 9 static queries often cover all)
    with torch.no_grad():
        model.transformer.static_bg_query.mul_(0.0)
    return model


@pytest.fixture(scope="module")
def predictor():
    p = DynamitePredictor(_model())
    p.set_image(_image())
    return p


CLICKS = [ObjectClick(1, Click(20, 30)), ObjectClick(2, Click(90, 60)), ObjectClick(0, Click(5, 85)),
          ObjectClick(1, Click(25, 35)), ObjectClick(3, Click(60, 10)), ObjectClick(2, Click(100, 70))]


def test_masks_are_disjoint_and_cover_every_object(predictor):
    masks = predictor.predict_objects(CLICKS)
    assert sorted(masks) == [1, 2, 3]
    stack = np.stack(list(masks.values()))
    assert stack.shape == (3, 90, 120) and stack.dtype == bool
    assert stack.sum(0).max() <= 1
    labels, ids = predictor.labels(CLICKS)
    assert ids == [1, 2, 3] and set(np.unique(labels)) <= {0, 1, 2, 3}


def test_undo_equals_a_fresh_replay(predictor):
    predictor.predict_objects(CLICKS)
    undone = predictor.predict_objects(CLICKS[:-1])
    fresh = DynamitePredictor(_model())
    fresh.set_image(_image())
    replay = fresh.predict_objects(CLICKS[:-1])
    assert undone.keys() == replay.keys()
    assert all(np.array_equal(undone[k], replay[k]) for k in undone)
    state = predictor.get_state()
    predictor.predict_objects(CLICKS)
    predictor.set_state(state)
    again = predictor.predict_objects(list(predictor.get_state()))
    assert all(np.array_equal(undone[k], again[k]) for k in undone)


def test_object_ids_need_not_be_contiguous(predictor):
    renamed = [ObjectClick({1: 7, 2: 4, 3: 9}.get(c.object_id, 0), c.click) for c in CLICKS]
    a, b = predictor.predict_objects(CLICKS), predictor.predict_objects(renamed)
    # sorted ids keep the object order: 1,2,3 ↔ 4,7,9 is not order preserving, so compare as sets
    assert sorted(b) == [4, 7, 9]
    assert sorted(int(m.sum()) for m in a.values()) == sorted(int(m.sum()) for m in b.values())


def test_edge_cases(predictor):
    assert predictor.predict_objects([]) == {}
    assert predictor.predict_objects([ObjectClick(0, Click(5, 5))]) == {}
    # background clicks before the first object click (the official demo crashes here)
    masks = predictor.predict_objects([ObjectClick(0, Click(5, 5)), ObjectClick(0, Click(100, 80)),
                                       ObjectClick(1, Click(60, 45))])
    assert list(masks) == [1] and masks[1].shape == (90, 120)
    negatives_only = predictor.predict([Click(10, 10, positive=False)])
    assert negatives_only.mask.shape == (90, 120) and not negatives_only.mask.any()
    single = predictor.predict([Click(60, 45), Click(5, 5, positive=False)])
    assert single.mask.dtype == bool and "predict" in single.timings
    with pytest.raises(ValueError):
        predictor.predict_objects([ObjectClick(1, Click(500, 5))])


def test_fast_upsampling_option_runs(predictor):
    predictor.exact_upsampling = False
    try:
        masks = predictor.predict_objects(CLICKS)
    finally:
        predictor.exact_upsampling = True
    assert np.stack(list(masks.values())).sum(0).max() <= 1


def test_registered_builder(monkeypatch):
    with pytest.warns(UserWarning, match="no checkpoint"):
        p = build_predictor("dynamite", config=DynamiteConfig.tiny())
    assert isinstance(p, MultiInstancePredictor) and isinstance(p, DynamitePredictor)
