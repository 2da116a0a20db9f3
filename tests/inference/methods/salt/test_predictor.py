"""The ``salt`` predictor on a tiny random-weight backbone."""

import numpy as np
import pytest

from inference import Click, ExtremePoints, Scribble, build_predictor


def _image():
    img = np.zeros((96, 128, 3), np.uint8)
    img[:] = (30, 120, 40)
    img[16:48, 16:56] = (220, 40, 40)  # object A
    img[56:88, 72:120] = (40, 40, 220)  # object B
    return img


@pytest.fixture(scope="module")
def predictor():
    p = build_predictor("salt", backbone="tiny-effnet")
    p.set_image(_image())
    return p


def test_label_map_covers_every_instance_without_overlap(predictor):
    scribbles = [
        Scribble(((20.0, 30.0), (50.0, 30.0)), width=4, label=1, object_id=1),
        Scribble(((80.0, 70.0), (110.0, 70.0)), width=4, label=1, object_id=2),
        Scribble(((5.0, 90.0), (60.0, 90.0), (120.0, 5.0)), width=4, positive=False, object_id=0),
    ]
    result = predictor.segment(scribbles)
    assert result.labels.shape == (96, 128) and result.labels.dtype == np.int32
    assert result.objects == [(1, 1), (1, 2)]
    a, b = result.mask(1, 1), result.mask(1, 2)
    assert a[32, 35] and b[72, 95] and not (a & b).any()
    assert result.labels[90, 30] == 0
    assert result.timings["predict"] > 0


def test_a_new_scribble_reuses_the_graph(predictor):
    graph = predictor._graph
    predictor.segment([Scribble(((20.0, 30.0),), 2, object_id=1)])
    assert predictor._graph is graph


def test_clicks_give_one_object_with_the_border_as_background(predictor):
    mask = predictor.predict([Click(x=35, y=32)]).mask
    assert mask.shape == (96, 128) and mask[32, 35] and not mask[0, 0]
    with_negative = predictor.predict([Click(x=35, y=32), Click(x=95, y=72, positive=False)]).mask
    assert with_negative[32, 35] and not with_negative[72, 95]


def test_scribble_outside_the_image_is_refused(predictor):
    with pytest.raises(ValueError, match="outside"):
        predictor.segment([Scribble(((500.0, 5.0),), 2, object_id=1)])


def test_the_border_prior_spreads_background_mass_over_the_free_ring(predictor):
    gh, gw = predictor._grid_hw
    seeds = -np.ones(gh * gw, np.int64)
    seeds[0] = 1  # a seeded corner keeps its own label
    prior = predictor._border_prior(seeds, 3)
    ring = np.zeros((gh, gw), bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    on = prior[:, 0] > 0
    assert on.reshape(gh, gw)[ring].sum() == ring.sum() - 1 and not on.reshape(gh, gw)[~ring].any()
    assert np.isclose(prior.sum(), predictor.border_prior) and not prior[:, 1:].any()
    bare = build_predictor("salt", backbone="tiny-effnet", border_prior=0.0, prototype_mix=0.0)
    assert bare._border_prior(seeds, 3) is None


def test_several_thresholds_give_one_graph_each_and_one_label_map():
    p = build_predictor("salt", backbone="tiny-effnet", tau=(0.7, 0.8))
    p.set_image(_image())
    assert len(p._graph) == 2
    result = p.segment(
        [
            Scribble(((20.0, 30.0), (50.0, 30.0)), width=4, label=1, object_id=1),
            Scribble(((5.0, 90.0), (60.0, 90.0)), width=4, positive=False, object_id=0),
        ]
    )
    assert result.mask(1, 1)[30, 35] and result.labels[90, 30] == 0


def test_predict_objects_answers_for_every_object_at_once(predictor):
    prompts = [
        Click(x=35, y=32, object_id=1),
        Scribble(((80.0, 70.0), (110.0, 70.0)), width=4, object_id=2),
        Click(x=5, y=90, positive=False, object_id=0),
        ExtremePoints(left=(20, 40), right=(50, 40), top=(35, 20), bottom=(36, 45), object_id=3),
    ]
    masks = {k: r.mask for k, r in predictor.predict_objects(prompts).items()}
    assert sorted(masks) == [1, 2, 3] and masks[2][70, 95]
    assert not (masks[1] & masks[2]).any() and not (masks[2] & masks[3]).any()
    # the same strokes through the full label-map API
    result = predictor.segment(
        [
            Scribble(((35.0, 32.0),), 1.0, object_id=1),
            Scribble(((80.0, 70.0), (110.0, 70.0)), 4, object_id=2),
            Scribble(((5.0, 90.0),), 1.0, positive=False, object_id=0),
            Scribble(((20.0, 40.0), (50.0, 40.0), (35.0, 20.0), (36.0, 45.0)), 5.0, object_id=3),
        ]
    )
    assert all(np.array_equal(masks[k], result.mask(1, k)) for k in (1, 2, 3))


def test_predict_objects_without_a_negative_takes_the_border_as_background(predictor):
    masks = predictor.predict_objects(
        [Click(x=35, y=32, object_id=1), Click(x=95, y=72, object_id=4)]
    )
    assert sorted(masks) == [1, 4]
    assert masks[1].mask[32, 35] and masks[4].mask[72, 95] and not masks[1].mask[0, 0]
    # every prompt negative: nothing to label, every object empty
    empty = predictor.predict_objects([Click(x=35, y=32, positive=False, object_id=1)])
    assert list(empty) == [1] and not empty[1].mask.any()
