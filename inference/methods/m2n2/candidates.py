"""Choosing among M2N2's candidate segments: the ranked alternatives of a click, and the click
that speaks for a prior mask in the vote."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...imaging import first_argmax, padded_distance
from ...structures import Click


def rank_candidates(
    score: torch.Tensor,
    thresholds: torch.Tensor,
    area_of: Callable[[int], int],
    predicted: torch.Tensor | None,
    count: int,
    visit: int = 4096,
) -> list[tuple[float, float | None]]:
    """Up to ``count`` (threshold, predicted IoU or None) by ``score``, best first (ties: the
    first, as ``pick_threshold``), skipping a candidate within a factor 1.5 in area of one
    already taken (nested segments: IoU > 2/3, nearly the same mask). ``area_of(i)``: pixels
    of candidate i. At most ``visit`` candidates are looked at (the paper's N prefixes)."""
    taken: list[tuple[float, float | None]] = []
    areas: list[int] = []
    for i in torch.argsort(score, descending=True, stable=True)[:visit].tolist():
        if score[i] <= 0 or len(taken) == count:
            break
        area = area_of(i)
        if all(max(area, a) >= 1.5 * min(area, a) for a in areas):
            taken.append((float(thresholds[i]), None if predicted is None else float(predicted[i])))
            areas.append(area)
    return taken


def deepest_click(mask: np.ndarray) -> Click | None:
    """A positive click at the pixel of ``mask`` farthest from its edge (None when empty)."""
    if not mask.any():
        return None
    x, y = first_argmax(padded_distance(mask))
    return Click(x=float(x), y=float(y), positive=True)
