"""DynaMITe's training clicks: initial sampling (spec A3.2) and corrective clicks (A3.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.evaluation.clicker import padded_distance
from inference.methods.dynamite.clicks import (
    TimedClick,
    object_ious,
    predicted_labels,
    sample_corrective_clicks,
    sample_initial_clicks,
)


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """64×80 labels with two rectangles, a padding strip on the right; (labels, valid, bg)."""
    labels = np.zeros((64, 80), dtype=np.int64)
    labels[8:40, 6:46] = 1
    labels[30:60, 50:70] = 2
    valid = np.ones_like(labels, dtype=bool)
    valid[:, 76:] = False
    return labels, valid, valid & (labels == 0)


def test_initial_clicks_are_deep_inside_and_timestamped_in_order():
    labels, _, background = _scene()
    masks = np.stack([labels == 1, labels == 2])
    seen_counts, seen_bg = set(), set()
    for seed in range(60):
        objects, bg = sample_initial_clicks(masks, background, np.random.default_rng(seed))
        assert len(objects) == 2
        flat = [c for obj in objects for c in obj] + bg
        assert [c.t for c in flat] == list(range(len(flat)))  # 0,1,2… object by object
        for j, obj in enumerate(objects):
            dist = padded_distance(masks[j])
            first = obj[0]
            assert dist[int(first.y), int(first.x)] > dist.max() / 1.7
            assert 1 <= len(obj) <= 6
            for c in obj[1:]:  # extras: eroded mask
                y, x = int(c.y), int(c.x)
                assert masks[j, y - 1 : y + 2, x - 1 : x + 2].all()
            seen_counts.add(len(obj))
        for c in bg:
            y, x = int(c.y), int(c.x)
            assert background[y - 1 : y + 2, x - 1 : x + 2].all()
        assert len(bg) <= 6
        seen_bg.add(len(bg))
    assert 1 in seen_counts and max(seen_counts) >= 3  # P(m) ∝ 0.7^m spreads
    assert 0 in seen_bg and max(seen_bg) >= 2


def test_initial_clicks_are_reproducible_from_the_generator():
    labels, _, background = _scene()
    masks = np.stack([labels == 1, labels == 2])
    a = sample_initial_clicks(masks, background, np.random.default_rng(7))
    b = sample_initial_clicks(masks, background, np.random.default_rng(7))
    assert a == b
    assert isinstance(a[0][0][0], TimedClick) and a[0][0][0] == tuple(a[0][0][0])


def test_no_background_clicks_about_one_time_in_five():
    labels, _, background = _scene()
    masks = (labels == 1)[None]
    rng = np.random.default_rng(0)
    none = sum(not sample_initial_clicks(masks, background, rng)[1] for _ in range(400))
    # p(no click) = 0.2 + 0.8·P(m = 0) = 0.2 + 0.8·0.3/(1 − 0.7⁷) ≈ 0.46
    assert 0.36 < none / 400 < 0.56


def test_tiny_object_gets_only_its_first_click():
    masks = np.zeros((1, 20, 20), dtype=bool)
    masks[0, 5:7, 5:7] = True  # erodes to nothing: no extra positives
    for seed in range(20):
        objects, _ = sample_initial_clicks(masks, ~masks[0], np.random.default_rng(seed))
        assert len(objects[0]) == 1 and masks[0, int(objects[0][0].y), int(objects[0][0].x)]


def test_corrective_fn_click_goes_to_the_missed_object():
    gt, valid, _ = _scene()
    pred = gt.copy()
    pred[8:40, 6:26] = 0  # left half of object 1 missed (FN)
    per_object, bg = sample_corrective_clicks(pred, gt, valid, 10, np.random.default_rng(0))
    assert not bg and list(per_object) == [1]
    fn = padded_distance((gt == 1) & (pred != 1))
    for c in per_object[1]:
        assert c.t >= 10 and fn[int(c.y), int(c.x)] > fn.max() / 2


def test_corrective_fp_click_owner_comes_from_the_gt_map():
    gt, valid, _ = _scene()
    pred = gt.copy()
    pred[30:60, 50:70] = 1  # object 2 swallowed by object 1
    per_object, bg = sample_corrective_clicks(pred, gt, valid, 3, np.random.default_rng(1))
    # object 2 (IoU 0) is worst; object 1's FP region is object 2, so both clicks are its
    assert set(per_object) == {2} and not bg
    ts = [c.t for c in per_object[2]]
    assert ts == list(range(3, 3 + len(ts)))


def test_corrective_background_click_and_padding_is_never_an_error():
    gt, valid, _ = _scene()
    pred = gt.copy()
    pred[44:64, 0:30] = 1  # spill onto background (FP for object 1)
    pred[:, 76:] = 1  # padding: ignored
    per_object, bg = sample_corrective_clicks(pred, gt, valid, 0, np.random.default_rng(0))
    assert not per_object and 1 <= len(bg) <= 2
    for c in bg:
        assert gt[int(c.y), int(c.x)] == 0 and valid[int(c.y), int(c.x)]


def test_good_objects_are_left_alone_and_at_most_fifteen_are_corrected():
    gt = np.zeros((40, 200), dtype=np.int64)
    for j in range(20):
        gt[5:35, 10 * j + 1 : 10 * j + 9] = j + 1
    valid = np.ones_like(gt, dtype=bool)
    assert sample_corrective_clicks(gt, gt, valid, 0, np.random.default_rng(0)) == ({}, [])
    pred = np.zeros_like(gt)
    per_object, bg = sample_corrective_clicks(pred, gt, valid, 0, np.random.default_rng(0))
    assert len(per_object) == 15 and not bg


def test_one_or_two_clicks_with_probabilities_point_eight_and_point_two():
    gt, valid, _ = _scene()
    pred = np.where(gt == 1, 0, gt)
    rng = np.random.default_rng(5)
    twos = sum(
        len(sample_corrective_clicks(pred, gt, valid, 0, rng)[0][1]) == 2 for _ in range(300)
    )
    assert 0.12 < twos / 300 < 0.28


def test_predicted_labels_and_ious():
    n_objects = 2
    logits = torch.full((4, 8, 10), -5.0)
    owner = torch.tensor([1, 1, 2, 0])
    logits[0, :4, :5] = 5.0  # object 1, first query: top-left
    logits[1, 4:, :5] = 5.0  # object 1, second query: bottom-left
    logits[2, :, 5:] = 5.0  # object 2: right half
    valid = np.ones((32, 40), dtype=bool)
    valid[:, 36:] = False
    labels = predicted_labels(logits, owner, n_objects, valid)
    assert labels.shape == (32, 40)
    assert (
        (labels[:, :18] == 1).all()
        and (labels[:, 22:36] == 2).all()
        and (labels[:, 36:] == 0).all()
    )
    gt = np.where(labels == 2, 0, labels)
    ious = object_ious(labels, gt, 2, valid)
    assert ious[0] == 1.0 and ious[1] == 0.0


def test_add_corrective_clicks_keeps_click_set_shape():
    model = pytest.importorskip("inference.methods.dynamite.model")
    from inference.methods.dynamite.clicks import add_corrective_clicks

    gt, valid, _ = _scene()
    clicks = model.ClickSet(
        objects=[[(20.0, 20.0, 0)], [(45.0, 60.0, 1)]], background=[(2.0, 2.0, 2)]
    )
    pred = np.where(gt == 2, 0, gt)
    new = add_corrective_clicks(clicks, pred, gt, valid, np.random.default_rng(0))
    assert isinstance(new, model.ClickSet)
    assert new.objects[0] == clicks.objects[0] and new.background == clicks.background
    assert new.objects[1][0] == clicks.objects[1][0] and len(new.objects[1]) in (2, 3)
    assert [c[2] for c in new.objects[1][1:]] == list(range(3, 2 + len(new.objects[1])))
