"""The ``mis`` interactive predictor: clicks pick nodes of the image's unsupervised merge tree.

``set_image`` extracts patch features and builds the connectivity-constrained Ward tree (MIS,
Li et al. 2024, bottom-up merging). A positive click selects the smallest node containing it
that covers at least ``min_fraction`` of the patches (10 %); several positive clicks select the
smallest node containing all of them; each negative click inside the selection removes the
largest node under it that contains that click and no positive click. :meth:`coarser` and
:meth:`finer` walk the selection up or down the tree (state kept for undo).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ...backbones import Backbone, build_backbone
from ...imaging import refine_band
from ...predictor import Predictor
from ...structures import Click, MaskResult
from .tree import MergeTree, upsample_patches
from .ward import grid_edges, ward_tree


def build_tree(features: torch.Tensor) -> MergeTree:
    """Ward merge tree of a (C, h, w) feature map under 4-neighbour connectivity."""
    channels, h, w = features.shape
    flat = features.reshape(channels, h * w).T.contiguous().cpu().numpy()
    children, costs, _ = ward_tree(flat, grid_edges(h, w))
    return MergeTree(children, (h, w), costs)


class MISPredictor(Predictor):
    """Click → node of the merge tree.

    Args:
        backbone: a built :class:`~inference.backbones.Backbone` giving ``features``.
        min_fraction: smallest selectable node, as a fraction of the patches. 0.1: on 17
            GrabCut images NoC@85/90 were 4.76/5.24 at 0.005, 4.76/5.24 at 0.02, 4.12/4.65 at
            0.05, 3.82/4.35 at 0.1 and 3.77/4.35 at 0.2 (a first click on a tiny node wastes
            the next ones); ``finer()`` reaches below it.
        refine_band: pixels around the upsampled patch mask re-decided by a colour graph cut
            at full resolution (as in M2N2's ``refine_band``; 0 = off).
    """

    def __init__(
        self, backbone: Backbone, *, min_fraction: float = 0.1, refine_band: int = 8
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.min_fraction = min_fraction
        self.refine_band = refine_band
        self.tree: MergeTree | None = None
        self._image: np.ndarray | None = None
        self._level = 0  # + coarser, − finer, relative to the node the clicks select
        self.timings: dict[str, float] = {}

    @torch.inference_mode()
    def _set_image(self, image: np.ndarray) -> None:
        started = time.perf_counter()
        features = self.backbone.features(image)
        extracted = time.perf_counter()
        self.tree = build_tree(features)
        self._image = image
        self._level = 0
        done = time.perf_counter()
        self.timings = {
            "features": extracted - started,
            "merge": done - extracted,
            "set_image": done - started,
        }

    def reset(self) -> None:
        super().reset()
        self.tree = None
        self._image = None
        self._level = 0

    # -- granularity (undoable state) ------------------------------------------------------
    def coarser(self) -> None:
        """Select the parent of the current selection on the next ``predict``."""
        self._level += 1

    def finer(self) -> None:
        """Select the child (towards the first positive click) on the next ``predict``."""
        self._level -= 1

    def get_state(self) -> int:
        return self._level

    def set_state(self, state: int | None) -> None:
        self._level = int(state or 0)

    # -- per click -----------------------------------------------------------------------------
    def _leaf(self, click: Click) -> int:
        assert self.tree is not None
        gh, gw = self.tree.grid_hw
        height, width = self.image_size
        gx = min(gw - 1, int(click.x * gw / width))
        gy = min(gh - 1, int(click.y * gh / height))
        return gy * gw + gx

    def select(self, clicks: list[Click]) -> np.ndarray:
        """(h, w) bool patch mask chosen by ``clicks`` at the current granularity."""
        tree = self.tree
        assert tree is not None
        positives = [self._leaf(c) for c in clicks if c.positive]
        negatives = [self._leaf(c) for c in clicks if not c.positive]
        node = tree.lowest_common_ancestor(positives)
        min_size = max(1, int(np.ceil(self.min_fraction * tree.n_leaves)))
        while tree.sizes[node] < min_size and tree.parent[node] >= 0:
            node = int(tree.parent[node])
        node = self._walk(node, positives[0])
        mask = tree.patch_mask(node).reshape(-1)
        pos = np.array(positives)
        for leaf in negatives:
            if not mask[leaf] or leaf in positives:
                continue
            # the largest node under the selection holding this click and no positive one
            cut = leaf
            for up in tree.ancestors(leaf)[1:]:
                if up == node or np.isin(pos, tree.leaves(up)).any():
                    break
                cut = up
            mask[tree.leaves(cut)] = False
        return mask.reshape(tree.grid_hw)

    def _walk(self, node: int, towards_leaf: int) -> int:
        tree = self.tree
        assert tree is not None
        n = tree.n_leaves
        if self._level > 0:
            for _ in range(self._level):
                if tree.parent[node] < 0:
                    break
                node = int(tree.parent[node])
        elif self._level < 0:
            path = set(tree.ancestors(towards_leaf))
            for _ in range(-self._level):
                if node < n:
                    break
                a, b = tree.children[node - n]
                node = int(a if a in path else b)
        return node

    def _predict(self, clicks: list[Click]) -> MaskResult:
        started = time.perf_counter()
        height, width = self.image_size
        if not any(c.positive for c in clicks):
            return MaskResult(mask=np.zeros((height, width), dtype=bool), timings={"predict": 0.0})
        mask = upsample_patches(self.select(clicks), (height, width))
        for c in clicks:  # clicked pixels keep their own label, as in M2N2's final vote
            mask[int(c.y), int(c.x)] = c.positive
        if self.refine_band > 0:
            assert self._image is not None
            seeds = [(round(c.y), round(c.x), c.positive) for c in clicks]
            mask = refine_band(self._image, mask, seeds, band=self.refine_band)
        return MaskResult(mask=mask, score=None, timings={"predict": time.perf_counter() - started})


def build_mis(
    device: str = "cpu", backbone: str | Backbone = "effnet-lite0", **kwargs
) -> MISPredictor:
    """MIS tree selection on a backbone given by name (``effnet-lite0`` offline default)."""
    if isinstance(backbone, str):
        backbone = build_backbone(backbone, device=device)
    return MISPredictor(backbone, **kwargs)
