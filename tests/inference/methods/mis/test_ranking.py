"""Ranking MIS proposals: objects before most-of-the-image regions and border-to-border strips,
near-duplicates dropped, a deterministic order."""

import numpy as np

from inference.methods.mis.jobs import rank_rule, ranked_nodes
from inference.methods.mis.ranking import (
    RankRule,
    area_fractions,
    rank,
    rank_scores,
    touches_opposite_borders,
)
from inference.methods.mis.tree import MergeTree
from inference.methods.mis.ward import grid_edges, ward_tree

H = W = 20


def _box(top, left, bottom, right):
    mask = np.zeros((H, W), bool)
    mask[top:bottom, left:right] = True
    return mask


def test_features_of_synthetic_masks():
    masks = np.stack([_box(0, 0, H, W), _box(0, 0, 5, W), _box(0, 3, H, 6), _box(5, 5, 15, 15)])
    assert np.allclose(area_fractions(masks), [1.0, 0.25, 0.15, 0.25])
    assert touches_opposite_borders(masks).tolist() == [True, True, True, False]
    # a mask touching two adjacent borders (a corner) is not a strip
    assert not touches_opposite_borders(_box(0, 0, 8, 8)[None])[0]


def test_a_full_image_proposal_ranks_below_an_object():
    full, blob = _box(0, 0, H, W), _box(4, 4, 15, 15)  # the blob covers 30 %
    persistence = np.array([1.0, 1.0])
    assert [i for i, _ in rank(np.stack([full, blob]), persistence)] == [1, 0]
    # persistence alone had them tied (first wins); the penalties are 0.5 each, so the full
    # image scores a quarter of its area
    assert np.allclose(rank_scores(np.stack([full, blob]), persistence), [0.25, 121 / 400])
    # with the penalties off, the larger region wins again
    off = RankRule(large_factor=1.0, strip_factor=1.0)
    assert [i for i, _ in rank(np.stack([full, blob]), persistence, off)] == [0, 1]


def test_a_left_to_right_strip_ranks_below_a_blob():
    strip, blob = _box(0, 0, 6, W), _box(8, 6, 17, 14)  # 30 % and 18 % of the image
    order = rank(np.stack([strip, blob]), np.array([0.9, 0.9]))
    assert [i for i, _ in order] == [1, 0]
    # the same strip turned top-to-bottom is penalised the same way
    column = strip.T
    assert [i for i, _ in rank(np.stack([column, blob]), np.array([0.9, 0.9]))] == [1, 0]


def test_persistence_still_orders_regions_alike_in_shape():
    a, b = _box(2, 2, 8, 8), _box(10, 10, 16, 16)
    assert [i for i, _ in rank(np.stack([a, b]), np.array([0.3, 0.8]))] == [1, 0]


def test_near_duplicates_are_dropped_and_distinct_nested_regions_kept():
    big = _box(2, 2, 14, 14)  # 144 pixels
    near = big.copy()
    near[2, 2:7] = False  # 139 of them: IoU 0.965 with big
    half = _box(2, 2, 14, 8)  # nested, IoU 0.5: a different region
    other = _box(15, 15, 19, 19)
    masks = np.stack([near, big, half, other])
    kept = [i for i, _ in rank(masks, np.array([0.9, 0.9, 0.9, 0.9]))]
    assert kept == [1, 2, 3]  # near (scoring below big) is gone
    everything = RankRule(duplicate_iou=1.0)
    assert sorted(i for i, _ in rank(masks, np.ones(4), everything)) == [0, 1, 2, 3]


def test_the_order_is_deterministic_and_ties_keep_the_input_order():
    rng = np.random.default_rng(0)
    masks = np.stack([_box(r, c, r + 4, c + 4) for r, c in rng.integers(1, 15, size=(12, 2))])
    masks = masks[np.unique(masks.reshape(12, -1), axis=0, return_index=True)[1]]
    persistence = np.full(len(masks), 0.5)
    first = rank(masks, persistence, RankRule(duplicate_iou=1.0))
    assert first == rank(masks, persistence, RankRule(duplicate_iou=1.0))
    # equal areas and persistence: every score ties, so the input order is kept
    assert [i for i, _ in first] == list(range(len(masks)))
    scores = [s for _, s in rank(masks, rng.random(len(masks)))]
    assert scores == sorted(scores, reverse=True)
    assert rank(np.zeros((0, H, W), bool), np.zeros(0)) == []


def test_job_params_override_the_rule_defaults():
    assert rank_rule({"backbone": "x"}) == RankRule()
    assert rank_rule({"large_factor": 0.1, "duplicate_iou": 1}) == RankRule(
        large_factor=0.1, duplicate_iou=1.0
    )


def _scene_tree(h=16, w=16):
    """A top strip (rows 0–3), a blob (rows 7–13, columns 4–11) and background, as features."""
    x = np.zeros((h, w, 3))
    x[:, :, 2] = 1.0
    x[:4, :, :] = (1.0, 0.0, 0.0)
    x[7:14, 4:12, :] = (0.0, 1.0, 0.0)
    x += np.random.default_rng(1).normal(scale=0.01, size=x.shape)
    children, costs, _ = ward_tree(x.reshape(-1, 3), grid_edges(h, w))
    return MergeTree(children, (h, w), costs)


def test_the_job_ranking_puts_the_blob_first():
    tree = _scene_tree()
    args = {"min_fraction": 0.01, "score_threshold": 0.0, "draws": 50, "seed": 0}
    ranked = ranked_nodes(tree, **args)
    blob = _box(7, 4, 14, 12)[:16, :16]
    assert np.array_equal(tree.patch_mask(ranked[0][0]), blob)
    assert ranked == ranked_nodes(tree, **args)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    # the former order, by persistence alone, is still available and sorted
    former = ranked_nodes(tree, **args, by_persistence=True)
    assert [s for _, s in former] == sorted((s for _, s in former), reverse=True)
    assert {n for n, _ in ranked} <= {n for n, _ in former}
