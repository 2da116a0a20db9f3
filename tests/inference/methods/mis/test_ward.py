"""Connectivity-constrained Ward merging against scipy and scikit-learn."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import linkage

from inference.methods.mis.ward import grid_edges, ward_tree


def _leaf_sets(children: np.ndarray, n: int) -> list[frozenset[int]]:
    sets = [frozenset([i]) for i in range(n)]
    for a, b in children:
        sets.append(sets[a] | sets[b])
    return sets[n:]


def test_unconstrained_matches_scipy_ward():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 5))
    complete = np.array([(i, j) for i in range(24) for j in range(i + 1, 24)])
    children, costs, sizes = ward_tree(x, complete)
    reference = linkage(x, method="ward")
    ref_children = reference[:, :2].astype(int)
    assert _leaf_sets(children, 24) == _leaf_sets(ref_children, 24)
    # scipy's Ward height is sqrt(2 · our cost)
    np.testing.assert_allclose(np.sqrt(2 * costs), reference[:, 2], rtol=1e-9)
    assert sizes[-1] == 24


def test_grid_tree_matches_scikit_learn_and_respects_connectivity():
    from sklearn.cluster import ward_tree as sk_ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    rng = np.random.default_rng(1)
    h, w = 7, 9
    x = rng.normal(size=(h * w, 3))
    children, _, sizes = ward_tree(x, grid_edges(h, w))
    sk_children = sk_ward_tree(x, connectivity=grid_to_graph(h, w))[0]
    assert _leaf_sets(children, h * w) == _leaf_sets(sk_children, h * w)
    assert sizes[-1] == h * w
    # every node is a 4-connected set of grid cells
    from scipy.ndimage import label

    for leaves in _leaf_sets(children, h * w):
        grid = np.zeros(h * w, bool)
        grid[list(leaves)] = True
        assert label(grid.reshape(h, w))[1] == 1


def test_constraint_forbids_merging_far_identical_patches():
    # two identical far-apart patches must not merge before their neighbours
    x = np.zeros((1, 5, 1))
    x[0, 0] = x[0, 4] = 10.0
    children, _, _ = ward_tree(x.reshape(5, 1), grid_edges(1, 5))
    first_sets = _leaf_sets(children, 5)
    assert frozenset({0, 4}) not in first_sets[:-1]


def test_disconnected_graph_still_has_one_root():
    x = np.arange(6, dtype=float)[:, None]
    children, costs, sizes = ward_tree(x, np.array([[0, 1], [1, 2], [3, 4], [4, 5]]))
    assert len(children) == 5 and sizes[-1] == 6
    assert np.isinf(costs[-1]) and np.isfinite(costs[:-1]).all()


def test_bad_edges_are_refused():
    with pytest.raises(ValueError, match="outside"):
        ward_tree(np.zeros((3, 2)), np.array([[0, 3]]))
