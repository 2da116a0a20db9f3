"""Choosing each click's own truncation threshold λₚ (M2N2 §1.7) and the final vote (§1.8).

Every candidate segment S_k is a prefix of the pixels sorted by distance; its four scores come
from cumulative sums over that order, so one sort (O(N log N)) scores all N candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


@dataclass(frozen=True)
class ScoreSwitches:
    prior: bool = True
    edge: bool = True
    pos: bool = True
    neg: bool = True


def integer_sobel(dist: torch.Tensor) -> torch.Tensor:
    """Sobel magnitude of an (H, W) map, scaled so its max is 1024 and truncated to integers."""
    kx = _SOBEL_X.to(dist.device, dist.dtype)
    kernels = torch.stack([kx, kx.T])[:, None]
    padded = F.pad(dist[None, None], (1, 1, 1, 1), mode="reflect")
    grad = F.conv2d(padded, kernels)[0]
    mag = torch.sqrt(grad[0].square() + grad[1].square())
    top = mag.max()
    if top <= 0:  # a constant map has no edges (the official code would divide by zero)
        return torch.zeros_like(mag)
    return torch.floor(mag / top * 1024)


def _neighbour_min_rank(rank: torch.Tensor) -> torch.Tensor:
    """For each pixel, the smallest rank among its 4-neighbours (N where there is none)."""
    n = rank.numel()
    padded = F.pad(rank[None, None].float(), (1, 1, 1, 1), value=float(n))[0, 0]
    _h, _w = rank.shape
    shifts = torch.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
    return shifts.amin(dim=0).long()


def threshold_candidates(
    dist: torch.Tensor, max_segment_area: float = 0.4, switches: ScoreSwitches = ScoreSwitches()
) -> tuple[torch.Tensor, torch.Tensor]:
    """The part of :func:`choose_threshold` that depends on the click's map alone: the
    candidate thresholds (N−1 sorted values) and their prior × edge score (float64). A
    predictor caches it per click; only the pos / neg factors change as clicks are added."""
    flat = dist.reshape(-1)
    n = flat.numel()
    order = torch.sort(flat, stable=True).indices
    sorted_vals = flat[order]
    k = n - 1  # candidates 0..N-2: the whole image is not a candidate
    thresholds = sorted_vals[:k]
    score = torch.ones(k, dtype=torch.float64, device=dist.device)
    if switches.prior:
        frac = torch.linspace(0, 1, k, device=dist.device, dtype=torch.float64)
        score *= (frac < max_segment_area).double()
    if switches.edge:
        rank = torch.empty(n, dtype=torch.long, device=dist.device)
        rank[order] = torch.arange(n, device=dist.device)
        rank = rank.view_as(dist)
        enter = _neighbour_min_rank(rank).reshape(-1)
        leave = rank.reshape(-1)
        # Pixel q is on the outer boundary of S_k for enter(q) <= k < leave(q).
        inside = enter < leave
        enter, leave = enter[inside], leave[inside]
        grad = integer_sobel(dist).reshape(-1)[inside].double()
        length = torch.bincount(enter, minlength=n + 1) - torch.bincount(leave, minlength=n + 1)
        gsum = torch.bincount(enter, weights=grad, minlength=n + 1) - torch.bincount(
            leave, weights=grad, minlength=n + 1
        )
        length = torch.cumsum(length, 0)[:k].double()
        gsum = torch.cumsum(gsum, 0)[:k]
        score *= gsum / length.clamp_min(1)
    return thresholds, score


def final_scores(
    thresholds: torch.Tensor,
    base_score: torch.Tensor,
    same_values: torch.Tensor,
    opposite_values: torch.Tensor,
    map_max: torch.Tensor,
    switches: ScoreSwitches = ScoreSwitches(),
) -> torch.Tensor:
    """Each candidate's score times the pos and neg factors from the other clicks (float64).
    ``map_max``: the map's maximum (the neg bound with no opposite clicks)."""
    score = base_score
    if switches.pos:
        same_sorted = torch.sort(same_values.to(thresholds.dtype)).values
        covered = torch.searchsorted(same_sorted, thresholds, right=True)
        score = score * (covered.double() / max(same_values.numel(), 1))
    if switches.neg:
        bound = opposite_values.min() if opposite_values.numel() else map_max
        score = score * (thresholds < bound).double()
    return score


def pick_threshold(
    thresholds: torch.Tensor,
    base_score: torch.Tensor,
    same_values: torch.Tensor,
    opposite_values: torch.Tensor,
    map_max: torch.Tensor,
    switches: ScoreSwitches = ScoreSwitches(),
) -> float:
    """The rest of :func:`choose_threshold`: the pos and neg factors from the other clicks,
    then the first best candidate (see :func:`final_scores`)."""
    score = final_scores(thresholds, base_score, same_values, opposite_values, map_max, switches)
    best = int(torch.argmax(score))  # the first maximum, as the reference does
    return float(thresholds[best])


def choose_threshold(
    dist: torch.Tensor,
    same_values: torch.Tensor,
    opposite_values: torch.Tensor,
    max_segment_area: float = 0.4,
    switches: ScoreSwitches = ScoreSwitches(),
) -> float:
    """λₚ for one click.

    ``dist``: (H, W) distance map of the click in [0, 1]. ``same_values``: (S,) the map's values
    at the clicks with the same label (the click itself included); ``opposite_values``: (O,)
    at the clicks of the other label. Returns the threshold of the best-scoring prefix segment.
    """
    if not any((switches.prior, switches.edge, switches.pos, switches.neg)):
        return 0.5
    thresholds, score = threshold_candidates(dist, max_segment_area, switches)
    return pick_threshold(thresholds, score, same_values, opposite_values, dist.max(), switches)


def truncated_nearest_neighbour(
    distances: torch.Tensor,
    thresholds: torch.Tensor,
    positive: torch.Tensor,
    clicks_yx: torch.Tensor,
) -> torch.Tensor:
    """The final mask: each pixel takes the label of the click nearest in normalised distance,
    if that distance is ≤ 1 (else background); clicked pixels keep their own label.

    ``distances``: (P, H, W); ``thresholds``: (P,); ``positive``: (P,) bool; ``clicks_yx``:
    (P, 2) long. Returns (H, W) bool.
    """
    return nearest_click_labels(distances, thresholds, positive, clicks_yx)[0]


def nearest_click_labels(
    distances: torch.Tensor,
    thresholds: torch.Tensor,
    positive: torch.Tensor,
    clicks_yx: torch.Tensor,
    deciding: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`truncated_nearest_neighbour`'s mask and the pixels decided by one of the first
    ``deciding`` clicks (all by default): nearest normalised distance ≤ 1, and the clicked
    pixels; (H, W) bool each. Outside the decided pixels the mask is background, or a prior
    mask's value where one is refined (the later clicks stand for the prior in the vote)."""
    normalised = distances / thresholds.clamp_min(1e-7)[:, None, None]
    best, owner = normalised.min(dim=0)
    decided = best <= 1.0
    mask = positive[owner] & decided
    mask[clicks_yx[:, 0], clicks_yx[:, 1]] = positive
    decided[clicks_yx[:, 0], clicks_yx[:, 1]] = True
    if deciding is not None and deciding < len(positive):
        decided &= owner < deciding
        decided[clicks_yx[:deciding, 0], clicks_yx[:deciding, 1]] = True
    return mask, decided
