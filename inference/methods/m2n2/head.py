"""A learned per-cell answer to one click, used to rank the click's candidate segments.

The candidate scorer (``scorer.py``) describes each segment by statistics of its pixels: size,
edges, colour. It never sees what the backbone says about the clicked thing. This head does:
for every cell of the token grid it predicts the probability that the cell belongs to the
clicked object, from

- the cell's backbone feature and the clicked cell's (a fixed PCA to :data:`PCA_DIMS`, then a
  learned projection; their product and cosine), so that it learns which kinds of regions go
  together as one object and which are "stuff" (walls, sky, tables);
- the click's Markov map on the grid (its rank among the cells, its value, 0 where the walk
  started), the cell's offset from the click, and its colour and colour difference.

A candidate's soft IoU with that probability map is added to its scorer score (each in
[0, 1], unweighted): the segments stay M2N2's (connected, holding the click, edges snapped),
the head only helps choose among them. Trained on the development sets' first halves by
:mod:`inference.evaluation.m2n2_head`, which reproduces the shipped ``head.npz``.

On by default where it reads the features it was trained on (:func:`default_head`:
``effnet-lite0``, stages 2/4/5); any other backbone ranks with the scorer alone, even one of
the same width (``effnet-lite1`` has lite0's channels but other features). ``maskwright eval``
on the three sets' second halves (20 clicks, scorer alone → scorer + head): NoC@85 GrabCut
2.32 → 2.28, coco_mval_dev100 4.78 → 4.64, coco_sample128 8.90 → 8.85; NoC@90 3.32 → 3.32,
7.22 → 7.00, 12.00 → 11.50; mIoU@1 0.766 → 0.856, 0.525 → 0.540, 0.440 → 0.496; first clicks
with IoU < 0.2: 12 % → 0 %, 28 % → 20 %, 40 % → 25 %. What it costs: mIoU@5 and @10 a little
lower on all three (the scorer alone picks later clicks' segments slightly better), and one
more coco_sample128 object never reaches 85 % (NoF@85 2 → 3).

Before that, as the mean IoU of the segment chosen for a positive click among its 40
candidates (head and scorer trained on the first halves, second halves): first clicks
coco_mval_dev100 0.506 → 0.568, coco_sample128 0.425 → 0.435, GrabCut 0.748 → 0.824; later
clicks 0.335 → 0.392, 0.276 → 0.305, 0.404 → 0.525. Trained the other way round (second
halves, checked on the first, where the scorer had been trained) the first clicks lost
(0.558 → 0.483, 0.454 → 0.403, 0.781 → 0.721) and the later ones gained.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_HEAD = Path(__file__).with_name("head.npz")
# the backbone and stages whose grid features the packaged head was trained on
TRAINED_ON = ("effnet-lite0", (2, 4, 5))
# ``M2N2Predictor(head=AUTO)``: the packaged head where it reads the backbone, else none
AUTO = "auto"
PCA_DIMS = 32
CELL_INPUTS = (
    "walk_rank",
    "walk_value",
    "walk_start",
    "dy",
    "dx",
    "offset",
    "dr",
    "dg",
    "db",
    "r",
    "g",
    "b",
)
PARAMS = ("mean", "basis", "proj_w", "proj_b", "w1", "b1", "w2", "b2")


def click_cell(x: float, y: float, work_hw: tuple[int, int], grid_hw: tuple[int, int]) -> int:
    """Raster index of the grid cell holding pixel (x, y) of a ``work_hw`` image."""
    gh, gw = grid_hw
    u = min(gw - 1, max(0, int(x * gw / work_hw[1])))
    v = min(gh - 1, max(0, int(y * gh / work_hw[0])))
    return v * gw + u


def cell_inputs(
    walk: torch.Tensor, colour: torch.Tensor, grid_hw: tuple[int, int], cell: int
) -> torch.Tensor:
    """(N, len(CELL_INPUTS)) float32 inputs of each cell besides its feature.

    ``walk``: (N,) the click's Markov crossing times on the grid (``markov.markov_maps``);
    ``colour``: (N, 3) mean RGB of each cell in [0, 1]; ``cell``: the clicked cell's index.
    """
    gh, gw = grid_hw
    walk = walk.float()
    rank = walk.argsort().argsort().float() / len(walk)
    ys, xs = torch.meshgrid(
        torch.arange(gh, device=walk.device), torch.arange(gw, device=walk.device), indexing="ij"
    )
    side = max(gh, gw)
    dy = (ys.reshape(-1) - cell // gw).float() / side
    dx = (xs.reshape(-1) - cell % gw).float() / side
    colour = colour.float()
    return torch.stack(
        [
            rank,
            walk / walk.max().clamp_min(1e-6),
            (walk <= 0).float(),
            dy,
            dx,
            (dy.square() + dx.square()).sqrt(),
            *(colour - colour[cell]).T,
            *colour.T,
        ],
        dim=1,
    )


def reduce_features(params: dict[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """(N, C) backbone features → (N, PCA_DIMS) unit vectors in the head's fixed PCA basis."""
    return F.normalize((features.float() - params["mean"]) @ params["basis"], dim=1)


def forward(
    params: dict[str, torch.Tensor], reduced: torch.Tensor, cell: torch.Tensor, inputs: torch.Tensor
) -> torch.Tensor:
    """Logits (M,) of M cells. ``reduced``: (M, PCA_DIMS) from :func:`reduce_features`;
    ``cell``: (M,) long, the row of each cell's clicked cell in ``reduced``; ``inputs``:
    (M, len(CELL_INPUTS)). Training batches many clicks' cells through this same function."""
    g = reduced @ params["proj_w"] + params["proj_b"]
    gc = g[cell]
    cos = (reduced * reduced[cell]).sum(1, keepdim=True)
    hidden = torch.relu(torch.cat([g, gc, g * gc, cos, inputs], 1) @ params["w1"] + params["b1"])
    return (hidden @ params["w2"] + params["b2"]).squeeze(1)


class ClickHead:
    """The head's weights (a ``head.npz``: :data:`PARAMS`) and its per-click probabilities."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [k for k in PARAMS if k not in weights]
        if missing:
            raise ValueError(f"click head weights lack {missing}")
        names = [str(n) for n in weights.get("inputs", np.array(CELL_INPUTS))]
        if tuple(names) != CELL_INPUTS:
            raise ValueError(f"click head was trained on inputs {names}, not {CELL_INPUTS}")
        self.params = {k: torch.from_numpy(np.asarray(weights[k], np.float32)) for k in PARAMS}
        self.channels = int(self.params["mean"].shape[0])

    @classmethod
    def load(cls, path: str | Path = DEFAULT_HEAD) -> ClickHead:
        with np.load(path, allow_pickle=False) as data:
            return cls({k: data[k] for k in data.files})

    def __call__(
        self,
        features: torch.Tensor,
        walk: torch.Tensor,
        colour: torch.Tensor,
        grid_hw: tuple[int, int],
        cell: int,
    ) -> torch.Tensor:
        """(N,) float32 probability that each grid cell is part of the clicked object.
        ``features``: (N, C) the backbone's grid features (C must be the head's); the rest as
        in :func:`cell_inputs`."""
        return self.probabilities(features, cell_inputs(walk, colour, grid_hw, cell), cell)

    def probabilities(
        self, features: torch.Tensor, inputs: torch.Tensor, cell: int
    ) -> torch.Tensor:
        """As :meth:`__call__`, from the (N, len(CELL_INPUTS)) inputs already built."""
        if features.shape[1] != self.channels:
            raise ValueError(
                f"the click head was trained on {self.channels}-channel features, "
                f"this backbone gives {features.shape[1]}"
            )
        p = {k: v.to(features.device) for k, v in self.params.items()}
        reduced = reduce_features(p, features)
        index = torch.full((len(reduced),), cell, dtype=torch.long, device=features.device)
        return torch.sigmoid(forward(p, reduced, index, inputs))


def grid_members(
    dist: torch.Tensor, thresholds: torch.Tensor, grid_hw: tuple[int, int]
) -> torch.Tensor:
    """(K, N) float32: the share of each grid cell inside each segment ``dist <= threshold``."""
    masks = (dist[None] <= thresholds[:, None, None].to(dist.dtype)).float()
    return F.adaptive_avg_pool2d(masks[None], grid_hw)[0].reshape(len(thresholds), -1)


def soft_iou(probs: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """(K,) soft IoU of each of K (K, N) segments with an (N,) probability map."""
    inter = (members * probs).sum(1)
    return inter / (members.sum(1) + probs.sum() - inter).clamp_min(1e-6)


def default_head(backbone: object) -> str | None:
    """The packaged head's path if ``backbone`` (a ``Backbone``) gives the grid features it was
    trained on, else None. By name and stages, not by width: lite1 has lite0's channels."""
    name, stages = TRAINED_ON
    if getattr(backbone, "name", None) == name and tuple(getattr(backbone, "stages", ())) == stages:
        return str(DEFAULT_HEAD)
    return None


@lru_cache(maxsize=4)
def load_head(path: str = str(DEFAULT_HEAD)) -> ClickHead:
    """The click head of a weights file, loaded once per process."""
    return ClickHead.load(path)
