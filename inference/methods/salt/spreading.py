"""SALT's graph over patch features and label spreading on it (scikit-learn's semantics).

scikit-learn's ``LabelSpreading`` rebuilds its graph on every ``fit``; SALT re-solves after each
scribble, so the graph is built once per image here (``build_graph``) and ``spread`` runs the
same iteration on the cached ``S``. ``tests/.../test_spreading.py`` checks that both give the
same label distributions.

Nodes are feature vectors (n, d), L2-normalised first: raw ViT keys or CNN activations have
norms in the tens, where ``exp(−γ‖xᵢ − xⱼ‖²)`` underflows to 0 for every pair.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

GraphKind = Literal["rbf", "knn", "threshold"]


def build_graph(
    features: torch.Tensor,
    kind: GraphKind = "knn",
    *,
    gamma: float = 20.0,
    k: int = 10,
    tau: float = 0.8,
    symmetric: bool = True,
) -> torch.Tensor | sp.csr_matrix:
    """``S = D^{-1/2} W D^{-1/2}`` with a zero diagonal, from (n, d) features.

    ``rbf``: ``W = exp(−γ‖xᵢ − xⱼ‖²)`` (dense). ``knn``: binary k-nearest-neighbour connectivity
    by cosine similarity, self included (sparse, as ``kneighbors_graph``), symmetrised by
    ``max(W, Wᵀ)`` unless ``symmetric=False`` (scikit-learn's choice; a node nobody counts among
    its neighbours then has in-degree 0 and is cut off, seeds included). ``threshold``: cosine
    similarity with entries below ``tau`` zeroed (dense). The diagonal of W is ignored in the
    degrees (``scipy.sparse.csgraph.laplacian``). Returns a dense (n, n) float32 tensor, or a
    scipy CSR matrix for ``knn`` (and for a ``threshold`` graph that keeps under 10 % of the
    pairs, on CPU).
    """
    x = F.normalize(features.float(), dim=1)
    n = x.shape[0]
    if kind == "knn":
        sim = x @ x.T
        k_eff = min(k, n)
        idx = sim.topk(k_eff, dim=1).indices.cpu().numpy()
        rows = np.repeat(np.arange(n), k_eff)
        w = sp.csr_matrix((np.ones(n * k_eff, np.float32), (rows, idx.reshape(-1))), shape=(n, n))
        if symmetric:
            w = w.maximum(w.T).tocsr()
        w.setdiag(0)
        w.eliminate_zeros()
        # scipy's normed Laplacian of a directed graph uses in-degrees (column sums)
        degree = np.asarray(w.sum(axis=0)).ravel()
        inv = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0).astype(np.float32)
        return sp.diags(inv) @ w @ sp.diags(inv)
    if kind == "rbf":
        sq = (2.0 - 2.0 * (x @ x.T)).clamp_min_(0)  # ‖a − b‖² of unit vectors
        w = torch.exp(-gamma * sq)
    elif kind == "threshold":
        w = x @ x.T
        w = torch.where(w >= tau, w, torch.zeros_like(w))
    else:
        raise ValueError(f"graph kind must be rbf, knn or threshold, got {kind!r}")
    w.fill_diagonal_(0)
    out_degree = w.sum(dim=1)
    scale = torch.where(
        out_degree > 0, out_degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(out_degree)
    )
    graph = scale[:, None] * w * scale[None, :]
    if kind == "threshold" and graph.device.type == "cpu" and (graph > 0).float().mean() < 0.1:
        # most pairs are cut: a sparse product is cheaper for every iteration that follows
        return sp.csr_matrix(graph.numpy())
    return graph


def spread(
    graph: torch.Tensor | sp.csr_matrix,
    seeds: np.ndarray,
    n_labels: int,
    *,
    alpha: float = 0.2,
    max_iter: int = 30,
    tol: float = 1e-3,
    balance: bool = False,
    clamp: bool = False,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """Label spreading: ``F ← α·S·F + (1 − α)·Y₀`` until ``Σ|ΔF| < tol`` or ``max_iter``.

    ``seeds``: (n,) int, a label in ``0…n_labels−1`` or −1 for unlabelled. Returns (n, n_labels)
    float32 row-normalised distributions (rows of nodes no seed reaches are uniform).

    Two departures from scikit-learn, off by default: ``balance`` gives every label the same
    total seed mass (a long background scribble would otherwise outweigh a click on an
    object: with α near 1 the seeds' own rows are mostly their neighbours' mass), and
    ``clamp`` keeps seeded nodes at their own label. ``prior`` ((n, n_labels) float32) is
    added to Y₀ after balancing and is not clamped: soft evidence, such as the image border
    leaning to the background.
    """
    n = seeds.shape[0]
    y0 = np.zeros((n, n_labels), np.float32)
    labelled = seeds >= 0
    y0[np.nonzero(labelled)[0], seeds[labelled]] = 1.0
    if balance:
        y0 /= np.maximum(y0.sum(axis=0, keepdims=True), 1.0)
    if prior is not None:
        y0 = y0 + prior.astype(np.float32)
    if isinstance(graph, torch.Tensor):
        f = torch.from_numpy(y0).to(graph.device)
        base = (1.0 - alpha) * torch.from_numpy(y0).to(graph.device)
        for _ in range(max_iter):
            previous, f = f, alpha * (graph @ f) + base
            if float((f - previous).abs().sum()) < tol:
                break
        out = f.cpu().numpy()
    else:
        f_sparse = y0.copy()
        base_sparse = (1.0 - alpha) * y0
        for _ in range(max_iter):
            previous_sparse, f_sparse = f_sparse, alpha * (graph @ f_sparse) + base_sparse
            if float(np.abs(f_sparse - previous_sparse).sum()) < tol:
                break
        out = np.asarray(f_sparse)
    if clamp:
        out = out.copy()
        out[labelled] = 0.0
        out[np.nonzero(labelled)[0], seeds[labelled]] = 1.0
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1), 1.0 / n_labels).astype(
        np.float32
    )
