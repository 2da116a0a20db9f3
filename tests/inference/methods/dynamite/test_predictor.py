"""The ``dynamite`` predictor on a tiny random model: exclusive masks, replays, edge cases."""

import numpy as np
import pytest
import torch

from inference import Click, ExtremePoints, Scribble, build_predictor
from inference.evaluation.multi_instance import MultiInstancePredictor, as_multi_instance
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


CLICKS = [
    Click(20, 30, object_id=1),
    Click(90, 60, object_id=2),
    Click(5, 85, positive=False, object_id=0),
    Click(25, 35, object_id=1),
    Click(60, 10, object_id=3),
    Click(100, 70, object_id=2),
]


def masks_of(predictor, prompts):
    return {k: r.mask for k, r in predictor.predict_objects(prompts).items()}


def test_masks_are_disjoint_and_cover_every_object(predictor):
    masks = masks_of(predictor, CLICKS)
    assert sorted(masks) == [1, 2, 3]
    stack = np.stack(list(masks.values()))
    assert stack.shape == (3, 90, 120) and stack.dtype == bool
    assert stack.sum(0).max() <= 1
    labels, ids = predictor.labels(CLICKS)
    assert ids == [1, 2, 3] and set(np.unique(labels)) <= {0, 1, 2, 3}


def test_undo_equals_a_fresh_replay(predictor):
    predictor.predict_objects(CLICKS)
    undone = masks_of(predictor, CLICKS[:-1])
    fresh = DynamitePredictor(_model())
    fresh.set_image(_image())
    replay = masks_of(fresh, CLICKS[:-1])
    assert undone.keys() == replay.keys()
    assert all(np.array_equal(undone[k], replay[k]) for k in undone)
    state = predictor.get_state()
    predictor.predict_objects(CLICKS)
    predictor.set_state(state)
    again = masks_of(predictor, list(predictor.get_state()))
    assert all(np.array_equal(undone[k], again[k]) for k in undone)


def test_object_ids_need_not_be_contiguous(predictor):
    renamed = [Click(c.x, c.y, c.positive, {1: 7, 2: 4, 3: 9}.get(c.object_id, 0)) for c in CLICKS]
    a, b = masks_of(predictor, CLICKS), masks_of(predictor, renamed)
    # sorted ids keep the object order: 1,2,3 ↔ 4,7,9 is not order preserving, so compare as sets
    assert sorted(b) == [4, 7, 9]
    assert sorted(int(m.sum()) for m in a.values()) == sorted(int(m.sum()) for m in b.values())


def test_edge_cases(predictor):
    assert predictor.predict_objects([]) == {}
    assert predictor.predict_objects([Click(5, 5, positive=False, object_id=0)]) == {}
    # background clicks before the first object click (the official demo crashes here)
    masks = masks_of(
        predictor,
        [
            Click(5, 5, positive=False, object_id=0),
            Click(100, 80, positive=False, object_id=0),
            Click(60, 45, object_id=1),
        ],
    )
    assert list(masks) == [1] and masks[1].shape == (90, 120)
    negatives_only = predictor.predict([Click(10, 10, positive=False)])
    assert negatives_only.mask.shape == (90, 120) and not negatives_only.mask.any()
    single = predictor.predict([Click(60, 45), Click(5, 5, positive=False)])
    assert single.mask.dtype == bool and "predict" in single.timings
    with pytest.raises(ValueError):
        predictor.predict_objects([Click(500, 5, object_id=1)])


def test_fast_upsampling_option_runs(predictor):
    predictor.exact_upsampling = False
    try:
        masks = masks_of(predictor, CLICKS)
    finally:
        predictor.exact_upsampling = True
    assert np.stack(list(masks.values())).sum(0).max() <= 1


def test_registered_builder(monkeypatch):
    with pytest.warns(UserWarning, match="no checkpoint"):
        p = build_predictor("dynamite", config=DynamiteConfig.tiny())
    assert isinstance(p, MultiInstancePredictor) and isinstance(p, DynamitePredictor)
    assert as_multi_instance(p) is p  # the MIST loop calls it directly


def test_negative_prompts_of_an_object_are_background(predictor):
    # object 2's negative click is a background click: same answer as an object-0 one
    as_zero = [*CLICKS[:3], Click(40, 40, positive=False, object_id=0)]
    as_two = [*CLICKS[:3], Click(40, 40, positive=False, object_id=2)]
    a, b = masks_of(predictor, as_zero), masks_of(predictor, as_two)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_an_object_without_a_positive_prompt_gets_an_empty_mask(predictor):
    masks = masks_of(predictor, [*CLICKS, Click(50, 50, positive=False, object_id=5)])
    assert sorted(masks) == [1, 2, 3, 5] and not masks[5].any()


def test_scribbles_and_extreme_points_are_read_as_clicks(predictor):
    from inference.structures import prompt_clicks

    scribble = Scribble(((10.0, 10.0), (40.0, 10.0)), object_id=1)
    points = ExtremePoints(
        left=(60, 40), right=(90, 42), top=(75, 30), bottom=(76, 55), object_id=2
    )
    direct = masks_of(predictor, [scribble, points])
    clicks = masks_of(predictor, prompt_clicks(scribble) + prompt_clicks(points))
    assert direct.keys() == clicks.keys() == {1, 2}
    assert all(np.array_equal(direct[k], clicks[k]) for k in direct)
