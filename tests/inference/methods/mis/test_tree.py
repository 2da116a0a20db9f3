"""Reading the merge tree: leaves, proposals, granularity levels."""

import numpy as np

from inference.methods.mis.tree import MergeTree
from inference.methods.mis.ward import grid_edges, ward_tree


def _two_region_tree(h=6, w=8):
    x = np.zeros((h, w, 2))
    x[:, : w // 2, 0] = 1.0
    x[:, w // 2 :, 1] = 1.0
    x += np.random.default_rng(0).normal(scale=0.01, size=x.shape)
    children, _, _ = ward_tree(x.reshape(-1, 2), grid_edges(h, w))
    return MergeTree(children, (h, w))


def test_leaves_and_masks_are_consistent():
    tree = _two_region_tree()
    n = tree.n_leaves
    assert sorted(tree.leaves(tree.root)) == list(range(n))
    for node in range(n, 2 * n - 1):
        a, b = tree.children[node - n]
        assert sorted(tree.leaves(node)) == sorted(np.concatenate([tree.leaves(a), tree.leaves(b)]))
        assert tree.patch_mask(node).sum() == tree.sizes[node]


def test_root_children_are_the_two_regions():
    tree = _two_region_tree()
    halves = {tuple(sorted(tree.leaves(c))) for c in tree.children[-1]}
    left = tuple(sorted(np.arange(48).reshape(6, 8)[:, :4].ravel()))
    right = tuple(sorted(np.arange(48).reshape(6, 8)[:, 4:].ravel()))
    assert halves == {left, right}


def test_proposals_are_large_enough_distinct_and_repeatable():
    tree = _two_region_tree()
    props = tree.proposals(40, seed=3)
    assert len(set(props.tolist())) == len(props) and tree.root not in props
    assert all(tree.sizes[p] > 0.05 * tree.n_leaves for p in props)
    assert np.array_equal(props, tree.proposals(40, seed=3))


def test_sampling_depth_follows_the_decay():
    tree = _two_region_tree(16, 16)
    rng = np.random.default_rng(0)
    depths = [tree.depth[tree.sample(rng, min_fraction=0.0)] for _ in range(4000)]
    # P(depth >= 2) = 0.9 (first step always taken, second with p = 0.9)
    assert abs(np.mean(np.array(depths) >= 2) - 0.9) < 0.03


def test_lowest_common_ancestor_and_levels():
    tree = _two_region_tree()
    assert tree.lowest_common_ancestor([0, 47]) == tree.root
    node = tree.lowest_common_ancestor([0, 8])
    assert {0, 8} <= set(tree.leaves(node).tolist())
    for level in tree.levels((0.1, 0.5)):
        assert tree.sizes[level] <= 0.5 * tree.n_leaves
