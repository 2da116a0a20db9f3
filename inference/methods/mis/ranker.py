"""A small learned ranker for MIS proposals: a logistic regression over cheap per-proposal
features, applied with numpy.

Every feature means the same thing on any image (fractions, ratios, flags, contrasts), and none
names a category. They are computed on the tree's patch grid (``h × w``):

* tree: log area fraction and its square (too large and too small both fail), persistence,
  log of the node's merge cost over its parent's (the other side of persistence), the node's
  position in the merge order (0 a leaf, 1 the root), log depth from the root, log height of
  its subtree;
* shape: borders touched (0–4), the opposite-border flag, the bbox's share of the image,
  fill of its bounding box, |log aspect|, compactness (4π·area / perimeter², on patch edges);
* contrast: RGB distance between the region's mean colour and the mean of a two-patch ring
  around it, and the same for the (L2-normalised) backbone features, when given.

The weights (``ranker.npz`` beside this file, a few hundred bytes) are fitted by
``python -m inference.evaluation.mis_ranker`` on the even-indexed images of coco_sample128
(target: IoU ≥ 0.5 with some instance) and checked on the odd ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .tree import MergeTree

DEFAULT_WEIGHTS = Path(__file__).with_name("ranker.npz")
RING = 2  # patches around a region that make its surroundings

FEATURE_NAMES = (
    "log_area",
    "log_area_sq",
    "persistence",
    "log_cost_ratio",
    "merge_position",
    "log_depth",
    "log_height",
    "borders",
    "opposite_borders",
    "bbox_share",
    "bbox_fill",
    "log_aspect",
    "compactness",
    "colour_contrast",
    "feature_contrast",
)


def subtree_heights(tree: MergeTree) -> np.ndarray:
    """(2n−1,) int64: merges on the longest path from each node down to a leaf (0 at leaves)."""
    n = tree.n_leaves
    height = np.zeros(2 * n - 1, np.int64)
    for m, (a, b) in enumerate(tree.children):  # children always precede their parent
        height[n + m] = max(height[a], height[b]) + 1
    return height


def tree_features(tree: MergeTree, nodes: list[int] | np.ndarray) -> np.ndarray:
    """(N, 7) float64: the tree columns of :data:`FEATURE_NAMES` for ``nodes`` (needs costs)."""
    if tree.costs is None:
        raise ValueError("this tree was stored without merge costs")
    nodes = np.asarray(nodes, dtype=np.int64)
    n = tree.n_leaves
    own = np.where(nodes >= n, tree.costs[np.maximum(nodes - n, 0)], 0.0)
    parent = tree.parent[nodes]
    above = np.where(parent >= 0, tree.costs[np.maximum(parent - n, 0)], np.inf)
    persistence = np.array([tree.persistence(int(v)) for v in nodes], dtype=np.float64)
    tiny = 1e-12
    ratio = np.log((own + tiny) / np.where(np.isfinite(above), above + tiny, 1.0))
    heights = subtree_heights(tree)[nodes]
    log_area = np.log(tree.sizes[nodes] / n)
    return np.stack(
        [
            log_area,
            log_area**2,
            persistence,
            np.clip(ratio, -30.0, 0.0),
            np.maximum(nodes - n + 1, 0) / max(n - 1, 1),
            np.log1p(tree.depth[nodes]),
            np.log1p(heights),
        ],
        1,
    ).astype(np.float64)


def _dilate(masks: np.ndarray, steps: int) -> np.ndarray:
    """(N, h, w) bool grown by ``steps`` 8-neighbour patches."""
    out = masks.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        grown[:, :, 1:] |= grown[:, :, :-1]
        grown[:, :, :-1] |= grown[:, :, 1:]
        out = grown
    return out


def _contrast(masks: np.ndarray, ring: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance between the mean of (h, w, C) ``values`` inside each mask and
    inside its ring; 0 where the ring is empty."""
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    inside = masks.reshape(len(masks), -1).astype(np.float64)
    around = ring.reshape(len(ring), -1).astype(np.float64)
    mean_in = inside @ flat / np.maximum(inside.sum(1, keepdims=True), 1.0)
    mean_out = around @ flat / np.maximum(around.sum(1, keepdims=True), 1.0)
    return np.where(around.any(1), np.linalg.norm(mean_in - mean_out, axis=1), 0.0)


def mask_features(
    patches: np.ndarray, rgb: np.ndarray | None = None, features: np.ndarray | None = None
) -> np.ndarray:
    """(N, 8) float64: the shape and contrast columns of :data:`FEATURE_NAMES` for (N, h, w)
    bool patch masks. ``rgb``: (h, w, 3) colour on the same grid (0–255, see
    :func:`grid_rgb`); ``features``: (C, h, w) backbone features. A missing one gives a 0
    column."""
    masks = np.asarray(patches, dtype=bool)
    count, h, w = masks.shape
    area = masks.reshape(count, -1).sum(1).astype(np.float64)
    edges = [masks[:, :, 0], masks[:, :, -1], masks[:, 0, :], masks[:, -1, :]]
    touched = np.stack([e.any(1) for e in edges], 1)
    opposite = (touched[:, 0] & touched[:, 1]) | (touched[:, 2] & touched[:, 3])
    rows: np.ndarray = np.any(masks, axis=2)  # (N, h): rows the mask reaches
    cols: np.ndarray = np.any(masks, axis=1)  # (N, w)
    box_h = np.where(rows.any(1), h - np.argmax(rows[:, ::-1], 1) - np.argmax(rows, 1), 0)
    box_w = np.where(cols.any(1), w - np.argmax(cols[:, ::-1], 1) - np.argmax(cols, 1), 0)
    box = np.maximum(box_h * box_w, 1).astype(np.float64)
    # perimeter on patch edges, the image border counted: inner edges that change value
    perimeter = (
        (masks[:, 1:] != masks[:, :-1]).reshape(count, -1).sum(1)
        + (masks[:, :, 1:] != masks[:, :, :-1]).reshape(count, -1).sum(1)
        + sum(e.sum(1) for e in edges)
    ).astype(np.float64)
    ring = _dilate(masks, RING) & ~masks
    colour = np.zeros(count) if rgb is None else _contrast(masks, ring, rgb) / 255.0
    if features is None:
        feature = np.zeros(count)
    else:
        per_patch = np.moveaxis(np.asarray(features, dtype=np.float64), 0, -1)
        norm = np.linalg.norm(per_patch, axis=-1, keepdims=True)
        feature = _contrast(masks, ring, per_patch / np.maximum(norm, 1e-12))
    return np.stack(
        [
            touched.sum(1).astype(np.float64),
            opposite.astype(np.float64),
            box / (h * w),
            area / box,
            np.abs(np.log(np.maximum(box_h, 1) / np.maximum(box_w, 1))),
            4 * np.pi * area / np.maximum(perimeter, 1.0) ** 2,
            colour,
            feature,
        ],
        1,
    )


def grid_rgb(rgb: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float32: the H×W×3 uint8 image averaged over each patch of the grid."""
    from PIL import Image

    height, width = grid_hw
    small = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BOX
    )
    return np.asarray(small, dtype=np.float32)


def proposal_features(
    tree: MergeTree,
    nodes: list[int] | np.ndarray,
    *,
    rgb: np.ndarray | None = None,
    features: np.ndarray | None = None,
) -> np.ndarray:
    """(N, len(FEATURE_NAMES)) float64 for ``nodes`` of ``tree``; ``rgb`` (h, w, 3) on the
    patch grid, ``features`` (C, h, w), each optional (see :func:`mask_features`)."""
    if not len(nodes):
        return np.zeros((0, len(FEATURE_NAMES)))
    patches = np.stack([tree.patch_mask(int(node)) for node in nodes])
    return np.concatenate([tree_features(tree, nodes), mask_features(patches, rgb, features)], 1)


@dataclass(frozen=True)
class LearnedRanker:
    """``score = sigmoid(coef · (x − mean) / scale + intercept)`` over the columns ``names``
    (a subset of :data:`FEATURE_NAMES`, in that order)."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @property
    def needs_rgb(self) -> bool:
        return "colour_contrast" in self.names

    @property
    def needs_features(self) -> bool:
        return "feature_contrast" in self.names

    def scores(self, table: np.ndarray) -> np.ndarray:
        """(N,) float64 in (0, 1) from an (N, len(FEATURE_NAMES)) table."""
        columns = [FEATURE_NAMES.index(name) for name in self.names]
        x = (np.asarray(table, dtype=np.float64)[:, columns] - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            names=np.array(self.names),
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            intercept=np.float64(self.intercept),
        )


def load_ranker(path: str | Path | None = None) -> LearnedRanker:
    """The ranker saved at ``path`` (default: the shipped ``ranker.npz``)."""
    return _load(str(path or DEFAULT_WEIGHTS))


@lru_cache(maxsize=4)
def _load(path: str) -> LearnedRanker:
    with np.load(path) as data:
        return LearnedRanker(
            names=tuple(str(v) for v in data["names"]),
            mean=data["mean"].astype(np.float64),
            scale=data["scale"].astype(np.float64),
            coef=data["coef"].astype(np.float64),
            intercept=float(data["intercept"]),
        )
