"""Ranking an image's MIS proposals so that the top of its list is objects.

A reviewer reads an image's proposals from the top, so the order matters more than the set.
Persistence alone (:meth:`MergeTree.persistence`) puts near-whole-image regions and
background strips first: they are distinct from what they merge with, but they are not
objects. The rule here, cheap and free of learnt parts:

* ``score = persistence × area fraction`` (small fragments are rarely a whole object);
* ×``large_factor`` for a proposal covering more than ``large_fraction`` of the image;
* ×``strip_factor`` for one touching two opposite borders (left and right, or top and
  bottom): sky, floor, wall, road;
* proposals whose IoU with a better one is above ``duplicate_iou`` are dropped (a node and
  its near-whole parent are the same region twice).

The rule was chosen on the even-indexed images of coco_sample128 and checked on the odd ones
(``maskwright bench mis`` prints top-k precision for this ranking and for persistence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankRule:
    """The penalties of :func:`rank_scores` and the dedup of :func:`rank`; factors of 1 and
    ``duplicate_iou`` 1 turn each off."""

    large_fraction: float = 0.5  # above this share of the image, a proposal is "most of it"
    large_factor: float = 0.5  # its score is multiplied by this
    strip_factor: float = 0.5  # multiplies the score of one touching two opposite borders
    duplicate_iou: float = 0.9  # a proposal this close to a better one is dropped


def area_fractions(masks: np.ndarray) -> np.ndarray:
    """(N,) float64: share of the image each (N, H, W) bool mask covers."""
    masks = np.asarray(masks, dtype=bool)
    return masks.reshape(len(masks), -1).mean(1) if len(masks) else np.zeros(0)


def touches_opposite_borders(masks: np.ndarray) -> np.ndarray:
    """(N,) bool: the (N, H, W) mask reaches both the left and right columns, or both the top
    and bottom rows."""
    masks = np.asarray(masks, dtype=bool)
    across = masks[:, :, 0].any(1) & masks[:, :, -1].any(1)
    down = masks[:, 0, :].any(1) & masks[:, -1, :].any(1)
    return np.asarray(across | down, dtype=bool)


def rank_scores(
    masks: np.ndarray, persistence: np.ndarray, rule: RankRule | None = None
) -> np.ndarray:
    """(N,) float64 in [0, 1]: the ranking score of each (N, H, W) bool mask (any resolution:
    the tree's patch grid is enough) given its (N,) persistence."""
    rule = rule or RankRule()
    area = area_fractions(masks)
    score = np.clip(np.asarray(persistence, dtype=np.float64), 0.0, 1.0) * area
    score = np.where(area > rule.large_fraction, score * rule.large_factor, score)
    return np.where(touches_opposite_borders(masks), score * rule.strip_factor, score)


def rank(
    masks: np.ndarray, persistence: np.ndarray, rule: RankRule | None = None
) -> list[tuple[int, float]]:
    """(index, score) of the (N, H, W) bool masks, best first, near-duplicates dropped.

    Ties keep the input order, so the result is deterministic for a given input."""
    rule = rule or RankRule()
    masks = np.asarray(masks, dtype=bool)
    if not len(masks):
        return []
    return rank_by_scores(masks, rank_scores(masks, persistence, rule), rule.duplicate_iou)


def rank_by_scores(
    masks: np.ndarray, scores: np.ndarray, duplicate_iou: float = RankRule.duplicate_iou
) -> list[tuple[int, float]]:
    """(index, score) of the (N, H, W) bool masks by their given (N,) ``scores``, best first,
    dropping a mask whose IoU with a better one exceeds ``duplicate_iou`` (1 keeps all).

    Ties keep the input order, so the result is deterministic for a given input."""
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if not len(masks):
        return []
    order = np.lexsort((np.arange(len(scores)), -scores))
    if duplicate_iou >= 1.0:
        return [(int(i), float(scores[i])) for i in order]
    flat = masks.reshape(len(masks), -1).astype(np.float32)
    sizes = flat.sum(1)
    kept: list[int] = []
    for i in order:
        if kept:
            inter = flat[kept] @ flat[i]
            iou = inter / np.maximum(sizes[kept] + sizes[i] - inter, 1.0)
            if iou.max() > duplicate_iou:
                continue
        kept.append(int(i))
    return [(i, float(scores[i])) for i in kept]
