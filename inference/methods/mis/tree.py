"""The MIS merge tree as arrays, and what is read off it: node masks, top-down proposal
sampling (the official ``sampling.cpp``), smallest node containing a set of leaves.

A tree over ``n`` leaves (patches of an ``h × w`` grid, raster order) is stored as
``children`` (n−1, 2) int64: merge ``m`` creates node ``n + m``; the root is ``2n − 2``. That
is all that needs saving (about 100 KiB for 6 400 patches); masks are derived on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


def upsample_patches(patches: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) bool patch mask → H×W bool pixel mask: bilinear upsampling cut at ½ (smoother
    than repeating each patch as a block)."""
    soft = torch.from_numpy(patches.astype(np.float32))[None, None]
    return (
        F.interpolate(soft, size=image_hw, mode="bilinear", align_corners=False)[0, 0] >= 0.5
    ).numpy()


@dataclass
class MergeTree:
    """A merge tree over an ``grid_hw`` patch grid.

    ``children``: (n−1, 2) int64; ``costs``: (n−1,) float64 Ward cost of each merge, if known.
    Derived on construction: ``parent`` (2n−1,) int64 (−1 at the
    root), ``sizes`` (2n−1,) int64 leaves per node, ``depth`` (2n−1,) int64 from the root.
    """

    children: np.ndarray
    grid_hw: tuple[int, int]
    costs: np.ndarray | None = None
    parent: np.ndarray = field(init=False, repr=False)
    sizes: np.ndarray = field(init=False, repr=False)
    depth: np.ndarray = field(init=False, repr=False)
    _first: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.children = np.asarray(self.children, dtype=np.int64).reshape(-1, 2)
        n = self.n_leaves
        if len(self.children) != n - 1:
            raise ValueError(f"a tree over {n} leaves has {n - 1} merges, got {len(self.children)}")
        total = 2 * n - 1
        self.parent = np.full(total, -1, np.int64)
        self.parent[self.children[:, 0]] = np.arange(n, total)
        self.parent[self.children[:, 1]] = np.arange(n, total)
        self.sizes = np.ones(total, np.int64)
        for m, (a, b) in enumerate(self.children):  # children always precede their parent
            self.sizes[n + m] = self.sizes[a] + self.sizes[b]
        self.depth = np.zeros(total, np.int64)
        for node in range(total - 2, -1, -1):  # parents have larger ids
            self.depth[node] = self.depth[self.parent[node]] + 1
        # Leaves in depth-first order: every node's leaves are one contiguous run.
        self._order, self._first = self._dfs_layout()

    @property
    def n_leaves(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1]

    @property
    def root(self) -> int:
        return 2 * self.n_leaves - 2

    def _dfs_layout(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_leaves
        first = np.zeros(2 * n - 1, np.int64)
        order = np.empty(n, np.int64)
        # Assign each node the start of its run top-down: left child starts where its parent
        # does, right child after the left child's leaves.
        for node in range(2 * n - 2, n - 1, -1):
            a, b = self.children[node - n]
            first[a] = first[node]
            first[b] = first[node] + self.sizes[a]
        leaves = np.arange(n)
        order[first[leaves]] = leaves
        return order, first

    def leaves(self, node: int) -> np.ndarray:
        """Leaf ids under ``node`` (int64, unsorted)."""
        start = self._first[node]
        return self._order[start : start + self.sizes[node]]

    def patch_mask(self, node: int) -> np.ndarray:
        """(h, w) bool: the patches under ``node``."""
        mask = np.zeros(self.n_leaves, bool)
        mask[self.leaves(node)] = True
        return mask.reshape(self.grid_hw)

    def ancestors(self, node: int) -> list[int]:
        """``node`` and every node above it, bottom-up, ending at the root."""
        out = [int(node)]
        while self.parent[out[-1]] >= 0:
            out.append(int(self.parent[out[-1]]))
        return out

    def lowest_common_ancestor(self, nodes: list[int]) -> int:
        """The smallest node containing every node of ``nodes``."""
        common = set(self.ancestors(nodes[0]))
        for node in nodes[1:]:
            common &= set(self.ancestors(node))
        return min(common, key=lambda c: self.sizes[c])

    def sample(
        self,
        rng: np.random.Generator,
        *,
        decay: float = 0.9,
        min_fraction: float = 0.05,
        tries: int = 100,
    ) -> int:
        """One proposal by the official top-down descent: from the root, with continue
        probability p = 1 decaying ×``decay`` per level, step to either child (½ each); stop
        when a draw exceeds p or at a leaf. Redraw up to ``tries`` times until the node covers
        more than ``min_fraction`` of the patches (else keep the last draw). Returns a node id."""
        n = self.n_leaves
        node = self.root
        for _ in range(tries):
            node, p = self.root, 1.0
            while node >= n and rng.random() <= p:
                node = int(self.children[node - n][int(rng.random() < 0.5)])
                p *= decay
            if self.sizes[node] > min_fraction * n:
                break
        return node

    def proposals(
        self, count: int = 50, *, seed: int = 0, decay: float = 0.9, min_fraction: float = 0.05
    ) -> np.ndarray:
        """Distinct nodes from ``count`` draws of :meth:`sample` (int64, draw order; the root is
        never one: a whole image is not a proposal)."""
        rng = np.random.default_rng(seed)
        seen: dict[int, None] = {}
        for _ in range(count):
            node = self.sample(rng, decay=decay, min_fraction=min_fraction)
            if node != self.root:
                seen.setdefault(node, None)
        return np.array(list(seen), dtype=np.int64)

    def levels(
        self,
        fractions: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4),
        min_fraction: float = 0.005,
    ) -> list[int]:
        """Nodes at several granularities: for each fraction f, the nodes that cover at most
        f of the patches while their parent covers more (the tree cut at that size), keeping
        those above ``min_fraction``. Ordered by fraction, then node id."""
        n = self.n_leaves
        out: list[int] = []
        for f in fractions:
            limit = f * n
            small = self.sizes[:-1] <= limit
            cut = small & (self.sizes[self.parent[:-1]] > limit)
            out.extend(int(i) for i in np.nonzero(cut)[0] if self.sizes[i] > min_fraction * n)
        return list(dict.fromkeys(out))

    def persistence(self, node: int) -> float:
        """How distinct a node is, in [0, 1]: ``1 − cost(its merge) / cost(its parent's merge)``
        (1 for a region formed cheaply and joined to its surroundings at a high cost). Needs
        ``costs``; leaves have cost 0, the root scores 0."""
        if self.costs is None:
            raise ValueError("this tree was stored without merge costs")
        n = self.n_leaves
        parent = self.parent[node]
        if parent < 0:
            return 0.0
        own = 0.0 if node < n else float(self.costs[node - n])
        above = float(self.costs[parent - n])
        if not np.isfinite(above) or above <= 0:
            return 1.0 if np.isinf(above) else 0.0
        return float(np.clip(1.0 - own / above, 0.0, 1.0))
