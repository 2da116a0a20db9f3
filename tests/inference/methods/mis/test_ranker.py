"""The learned MIS ranker: per-proposal features on synthetic masks and trees, the shipped
weights, and the job's ranking with them."""

import numpy as np
import pytest

from inference.methods.mis.jobs import ranked_nodes
from inference.methods.mis.ranker import (
    FEATURE_NAMES,
    LearnedRanker,
    grid_rgb,
    load_ranker,
    mask_features,
    proposal_features,
    subtree_heights,
    tree_features,
)
from inference.methods.mis.tree import MergeTree
from inference.methods.mis.ward import grid_edges, ward_tree

H, W = 20, 30
MASK_COLUMNS = FEATURE_NAMES[-8:]


def _box(top, left, bottom, right, h=H, w=W):
    mask = np.zeros((h, w), bool)
    mask[top:bottom, left:right] = True
    return mask


def _column(table, name):
    return table[:, MASK_COLUMNS.index(name)]


def test_shape_features_of_synthetic_masks():
    square = _box(5, 5, 11, 11)  # 6×6 inside the image
    strip = _box(0, 0, 4, W)  # the top rows, left to right
    corner = _box(0, 0, 5, 10)  # top-left corner, 5×10
    ring = _box(2, 2, 18, 18) & ~_box(4, 4, 16, 16)  # a hollow square
    table = mask_features(np.stack([square, strip, corner, ring]))
    assert table.shape == (4, 8) and table.dtype == np.float64
    assert _column(table, "borders").tolist() == [0, 3, 2, 0]
    assert _column(table, "opposite_borders").tolist() == [0, 1, 0, 0]
    assert np.allclose(_column(table, "bbox_share"), [36 / 600, 120 / 600, 50 / 600, 256 / 600])
    assert np.allclose(_column(table, "bbox_fill"), [1, 1, 1, (256 - 144) / 256])
    assert np.allclose(_column(table, "log_aspect"), [0, np.log(30 / 4), np.log(2), 0])
    # a square's perimeter is 4 s: 4π s² / (4 s)² = π / 4; a hollow one is far less compact
    compact = _column(table, "compactness")
    assert compact[0] == pytest.approx(np.pi / 4)
    assert compact[3] < compact[0] / 3
    # no colour or features given: those columns are 0
    assert not _column(table, "colour_contrast").any()
    assert not _column(table, "feature_contrast").any()


def test_contrast_against_a_ring_around_the_region():
    rgb = np.zeros((H, W, 3), np.float32)
    rgb[..., 2] = 255  # blue background
    rgb[5:11, 5:11] = (255, 0, 0)  # a red square
    features = np.zeros((4, H, W), np.float32)
    features[0] = 1.0
    features[1, 5:11, 5:11] = 1.0  # inside: (1, 1, 0, 0), normalised (½√2, ½√2)
    exact, shifted = _box(5, 5, 11, 11), _box(5, 8, 11, 14)
    table = mask_features(np.stack([exact, shifted]), rgb, features)
    colour = _column(table, "colour_contrast")
    assert colour[0] == pytest.approx(np.sqrt(2))  # (1, 0, 0) against (0, 0, 1)
    assert 0 < colour[1] < colour[0]  # half in, half out: a weaker edge
    feature = _column(table, "feature_contrast")
    expected = np.linalg.norm(np.array([1, 1]) / np.sqrt(2) - np.array([1, 0]))
    assert feature[0] == pytest.approx(expected)
    assert 0 < feature[1] < feature[0]
    # the whole image has no ring: no contrast
    whole = mask_features(np.ones((1, H, W), bool), rgb, features)
    assert not whole[0, -2:].any()


def test_grid_rgb_averages_each_patch():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = 200
    small = grid_rgb(rgb, (4, 6))
    assert small.shape == (4, 6, 3) and small.dtype == np.float32
    assert np.all(small[:, :3] == 0) and np.all(small[:, 3:] == 200)


def _scene_tree(h=16, w=16):
    """A top strip (rows 0–3), a blob (rows 7–13, columns 4–11) and background, as features."""
    x = np.zeros((h, w, 3))
    x[:, :, 2] = 1.0
    x[:4, :, :] = (1.0, 0.0, 0.0)
    x[7:14, 4:12, :] = (0.0, 1.0, 0.0)
    x += np.random.default_rng(1).normal(scale=0.01, size=x.shape)
    children, costs, _ = ward_tree(x.reshape(-1, 3), grid_edges(h, w))
    return MergeTree(children, (h, w), costs), x


def test_tree_features_of_a_real_tree():
    tree, _ = _scene_tree()
    n = tree.n_leaves
    nodes = [0, n, tree.root - 1]
    table = tree_features(tree, nodes)
    assert table.shape == (3, 7) and table.dtype == np.float64
    column = dict(zip(FEATURE_NAMES, table.T, strict=False))
    assert np.allclose(column["log_area"], np.log(tree.sizes[nodes] / n))
    assert np.allclose(column["log_area_sq"], column["log_area"] ** 2)
    assert np.allclose(column["persistence"], [tree.persistence(v) for v in nodes])
    # a leaf is before every merge; the last merge below the root is at (n − 2) / (n − 1)
    assert np.allclose(column["merge_position"], [0, 1 / (n - 1), (n - 2) / (n - 1)])
    heights = subtree_heights(tree)
    assert heights[0] == 0 and heights[n] == 1 and heights[tree.root] == heights.max()
    assert np.allclose(column["log_height"], np.log1p(heights[nodes]))
    assert np.all(column["log_cost_ratio"] <= 0)


def test_the_shipped_weights_load_and_rank_deterministically():
    ranker = load_ranker()
    assert set(ranker.names) <= set(FEATURE_NAMES)
    assert ranker.coef.shape == ranker.mean.shape == ranker.scale.shape == (len(ranker.names),)
    assert np.all(ranker.scale > 0) and np.isfinite(ranker.intercept)
    tree, x = _scene_tree()
    rgb = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    features = np.moveaxis(x, -1, 0).astype(np.float32)
    args = {"min_fraction": 0.01, "score_threshold": 0.0, "draws": 50, "seed": 0}
    ranked = ranked_nodes(tree, **args, ranker=ranker, rgb=rgb, features=features)
    assert ranked == ranked_nodes(tree, **args, ranker=ranker, rgb=rgb, features=features)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    # the blob ranks above the top strip and above the background around it
    assert np.array_equal(tree.patch_mask(ranked[0][0]), _box(7, 4, 14, 12, 16, 16))
    # the scores are the ranker's over the features (the grid is the image here)
    table = proposal_features(tree, [n for n, _ in ranked], rgb=rgb, features=features)
    assert np.allclose(ranker.scores(table), scores)


def test_a_saved_ranker_round_trips_and_scores_by_its_formula(tmp_path):
    names = ("log_area", "borders")
    ranker = LearnedRanker(
        names, np.array([-2.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0, -1.0]), 0.5
    )
    ranker.save(tmp_path / "r.npz")
    loaded = load_ranker(tmp_path / "r.npz")
    assert loaded.names == names and loaded.intercept == 0.5
    table = np.zeros((2, len(FEATURE_NAMES)))
    table[:, FEATURE_NAMES.index("log_area")] = [-1.0, -3.0]
    table[:, FEATURE_NAMES.index("borders")] = [1.0, 3.0]
    # (−1 + 2)·1 − 0·1 + 0.5 = 1.5 and (−3 + 2)·1 − 1·1 + 0.5 = −1.5
    assert np.allclose(loaded.scores(table), 1 / (1 + np.exp([-1.5, 1.5])))
    assert not loaded.needs_rgb and not loaded.needs_features


def test_the_job_ranks_by_the_learned_ranker_unless_told_the_rule():
    from inference.methods.mis.jobs import DEFAULT_RANKING, proposals

    assert DEFAULT_RANKING == "learned"
    params = {
        "backbone": "tiny-effnet",
        "max_per_image": 5,
        "min_fraction": 0.01,
        "score_threshold": 0.0,
        "draws": 20,
    }
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[20:70, 30:90] = (220, 30, 30)
    learned = proposals(params, "cpu").propose(rgb, 0)
    rule = proposals({**params, "ranking": "rule"}, "cpu").propose(rgb, 0)
    for found in (learned, rule):
        assert 0 < len(found) <= 5
        assert all(mask.shape == (96, 128) and mask.dtype == bool for mask, _ in found)
        scores = [s for _, s in found]
        assert scores == sorted(scores, reverse=True)
    assert all(0 < s < 1 for _, s in learned)
    assert [s for _, s in learned] != [s for _, s in rule]
    again = proposals(params, "cpu").propose(rgb, 0)  # deterministic
    assert len(again) == len(learned)
    assert all(
        np.array_equal(a, b) and s == t for (a, s), (b, t) in zip(learned, again, strict=True)
    )
    with pytest.raises(ValueError, match="ranking must be"):
        proposals({**params, "ranking": "nope"}, "cpu")
