"""A row-stochastic affinity built from patch features, for backbones without usable attention.

``A[i, j] = softmax_j(scale · cos(f_i, f_j) − colour_weight · |c_i − c_j|²
                                           − position_weight · |p_i − p_j|²)``

This is a softmax self-attention whose queries and keys are the (unit-norm) features: ``scale`` is
the inverse temperature (cosines lie in [-1, 1], so the logits span at most 2·scale), and the
optional colour and position terms are bilateral-filter-like penalties. Both are off by default:
whether they help segmentation has not been measured, and M2N2 already adds an edge-aware
upsampling and a flood fill of its own downstream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_size(feature_hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(h, w) with max(h, w) = ``long_side`` and the aspect ratio of ``feature_hw`` (short ≥ 1)."""
    if long_side < 1:
        raise ValueError(f"grid long side must be ≥ 1, got {long_side}")
    fh, fw = feature_hw
    if fh >= fw:
        return long_side, max(1, round(long_side * fw / fh))
    return max(1, round(long_side * fh / fw)), long_side


def resize_grid(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Resize a (C, h, w) map: area averaging to shrink, bilinear to enlarge."""
    if tuple(x.shape[-2:]) == tuple(size_hw):
        return x
    shrink = size_hw[0] <= x.shape[-2] and size_hw[1] <= x.shape[-1]
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    return F.interpolate(x.unsqueeze(0), size=size_hw, mode=mode, **kwargs).squeeze(0)


def cosine_affinity(
    features: torch.Tensor,
    *,
    scale: float = 20.0,
    colour: torch.Tensor | None = None,
    colour_weight: float = 0.0,
    position_weight: float = 0.0,
    exclude_self: bool = False,
) -> torch.Tensor:
    """Softmax of scaled cosine similarity between all grid cells.

    Args:
        features: (C, h, w) float features; each cell's vector is L2-normalised here.
        scale: inverse softmax temperature on the cosine similarity.
        colour: (3, h, w) mean RGB of each cell in [0, 1]; needed when ``colour_weight > 0``.
        colour_weight: weight of the squared RGB distance (range [0, 3]) in the logits.
        position_weight: weight of the squared distance between cell centres, in units of the
            grid's long side (so the range is [0, ~2] whatever the grid size).
        exclude_self: drop each cell's similarity to itself (always the row maximum, cos = 1).
            With it, a sharp ``scale`` cannot turn the matrix into the identity, where a
            Markov chain started at a click never spreads.

    Returns:
        (N, N) float32, N = h·w, raster order, row i = query cell i; rows sum to 1.
    """
    c, h, w = features.shape
    f = F.normalize(features.float().reshape(c, h * w), dim=0)
    logits = (f.T @ f).mul_(scale)  # (N, N), the only N² buffer
    if colour_weight:
        if colour is None or colour.shape != (3, h, w):
            raise ValueError(
                f"colour_weight needs a (3, {h}, {w}) colour map, got "
                f"{None if colour is None else tuple(colour.shape)}"
            )
        rgb = colour.float().reshape(3, h * w).T
        logits.sub_(torch.cdist(rgb, rgb).square_().mul_(colour_weight))
    if position_weight:
        ys, xs = torch.meshgrid(
            torch.arange(h, device=f.device), torch.arange(w, device=f.device), indexing="ij"
        )
        pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1).float() / max(h, w)
        logits.sub_(torch.cdist(pos, pos).square_().mul_(position_weight))
    if exclude_self:
        logits.fill_diagonal_(float("-inf"))
    # In-place softmax: one N×N buffer instead of three (N = 4096 → 64 MiB each).
    logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()
    return logits.div_(logits.sum(dim=1, keepdim=True))
