"""SALT's cached-graph label spreading against scikit-learn's LabelSpreading."""

import numpy as np
import pytest
import torch
from sklearn.semi_supervised import LabelSpreading

from inference.methods.salt.spreading import build_graph, spread


def _two_clusters(seed=0, n=40):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 8)) * 0.1 + np.eye(8)[0]
    b = rng.normal(size=(n, 8)) * 0.1 + np.eye(8)[1]
    x = np.concatenate([a, b]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["rbf", "knn"])
def test_matches_scikit_learn(kind):
    x = _two_clusters()
    seeds = np.full(len(x), -1)
    seeds[0], seeds[45] = 0, 1
    graph = build_graph(torch.from_numpy(x), kind, gamma=5.0, k=7, symmetric=False)
    ours = spread(graph, seeds, 2, alpha=0.2, max_iter=30, tol=1e-3)
    ref = LabelSpreading(kernel=kind, gamma=5.0, n_neighbors=7, alpha=0.2, max_iter=30, tol=1e-3)
    ref.fit(x, seeds)
    np.testing.assert_allclose(ours, ref.label_distributions_, atol=1e-5)


@pytest.mark.parametrize("kind", ["rbf", "knn", "threshold"])
def test_one_seed_per_cluster_labels_both(kind):
    x = _two_clusters(1)
    seeds = np.full(len(x), -1)
    seeds[3], seeds[50] = 0, 1
    labels = spread(
        build_graph(torch.from_numpy(x), kind), seeds, 2, alpha=0.9, max_iter=100
    ).argmax(1)
    assert (labels[:40] == 0).all() and (labels[40:] == 1).all()


def test_unreached_nodes_are_uniform():
    x = _two_clusters(2)
    seeds = np.full(len(x), -1)
    seeds[0] = 0
    out = spread(build_graph(torch.from_numpy(x), "threshold", tau=0.99), seeds, 2)
    assert np.allclose(out.sum(1), 1)


def test_unknown_graph_kind():
    with pytest.raises(ValueError, match="graph kind"):
        build_graph(torch.zeros(3, 2), "cosine")


def test_a_prior_is_soft_evidence_that_seeds_outweigh():
    """Two clusters, one seed in the first; a prior for label 1 on the second cluster labels it,
    and the same prior placed on the seeded cluster does not beat its clamped seed."""
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(0, 0.05, (10, 2)) + (1, 0), rng.normal(0, 0.05, (10, 2)) + (0, 1)]
    )
    graph = build_graph(torch.from_numpy(x).float(), "rbf", gamma=5.0)
    seeds = -np.ones(20, np.int64)
    seeds[0] = 0
    prior = np.zeros((20, 2), np.float32)
    prior[10:, 1] = 0.1
    out = spread(graph, seeds, 2, alpha=0.99, max_iter=200, balance=True, clamp=True, prior=prior)
    assert (out[:10].argmax(1) == 0).all() and (out[10:].argmax(1) == 1).all()
    prior[:, :] = 0
    prior[0, 1] = 5.0
    out = spread(graph, seeds, 2, alpha=0.99, max_iter=200, balance=True, clamp=True, prior=prior)
    assert out[0].tolist() == [1.0, 0.0]
