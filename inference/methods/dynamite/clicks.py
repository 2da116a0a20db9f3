"""DynaMITe's training clicks: the initial sample (spec A3.2) and corrective clicks (A3.3).

Everything works on one training crop at a time, in that crop's pixel grid: the crop is the
model's whole (resized, unpadded as far as the model is concerned) image, so a click's (y, x)
is a pixel row and column of the crop, given as floats as the model's :class:`ClickSet` wants.

Distance transforms are exact Euclidean on the mask padded with a 1-px zero frame (the crop's
border counts as a boundary), :func:`inference.imaging.padded_distance`, the same
function the evaluation clicker uses.

Randomness comes only from the ``numpy.random.Generator`` passed in, so the trainer can derive
it from (seed, step) and a resumed run samples exactly what the uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...imaging import padded_distance

if TYPE_CHECKING:
    from .model import ClickSet

FIRST_CLICK_DIVISOR = 1.7  # first click: among pixels deeper than max DT / 1.7
EXTRA_DECAY = 0.7  # P(m extra clicks) ∝ 0.7^m
MAX_EXTRA_POSITIVE = 5  # m ∈ {0..5} extra positives per object
MAX_BACKGROUND = 6  # m ∈ {0..6} background clicks
NO_BACKGROUND_PROB = 0.2  # with this probability an image gets no background click at all
CORRECTIVE_MAX_OBJECTS = 15  # at most this many objects get a corrective click per round
CORRECTIVE_IOU = 0.9  # only objects below this IoU are corrected
CORRECTIVE_DIVISOR = 2.0  # corrective clicks among pixels deeper than max DT / 2
TWO_CLICKS_PROB = 0.2  # a corrected object gets 2 clicks with p = 0.2, else 1


class TimedClick(NamedTuple):
    """A click in the crop's pixel grid: row ``y``, column ``x`` and timestamp ``t``.

    A NamedTuple, so it *is* the ``(y, x, t)`` tuple the model's :class:`ClickSet` holds.
    """

    y: float
    x: float
    t: int


def _decaying_count(rng: np.random.Generator, largest: int) -> int:
    """m ∈ {0..largest} with P(m) ∝ 0.7^m."""
    weights = EXTRA_DECAY ** np.arange(largest + 1)
    return int(rng.choice(largest + 1, p=weights / weights.sum()))


def _erode(mask: np.ndarray) -> np.ndarray:
    """H×W bool eroded by a 3×3 square (pixels outside the image count as False)."""
    eroded = cv2.erode(
        mask.astype(np.uint8),
        np.ones((3, 3), np.uint8),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return eroded.astype(bool)


def _pick(rng: np.random.Generator, candidates: np.ndarray, count: int) -> list[tuple[int, int]]:
    """``count`` distinct (y, x) rows of ``candidates`` (K×2 int), uniformly at random."""
    count = min(count, len(candidates))
    if count <= 0:
        return []
    rows = rng.choice(len(candidates), size=count, replace=False)
    return [(int(candidates[r, 0]), int(candidates[r, 1])) for r in rows]


def _extra_clicks(
    rng: np.random.Generator, region: np.ndarray, largest: int
) -> list[tuple[int, int]]:
    """m ~ 0.7^m clicks (capped at half the candidates) uniformly in ``region`` eroded 3×3."""
    candidates = np.argwhere(_erode(region))
    m = min(_decaying_count(rng, largest), len(candidates) // 2)
    return _pick(rng, candidates, m)


def sample_initial_clicks(
    masks: np.ndarray, background: np.ndarray, rng: np.random.Generator
) -> tuple[list[list[TimedClick]], list[TimedClick]]:
    """Spec A3.2 for one crop: clicks per object and background clicks, timestamped.

    Args:
        masks: N×H×W bool, the kept, de-overlapped objects (each non-empty).
        background: H×W bool, not(padding ∪ kept objects).
        rng: the only source of randomness.

    Returns:
        ``(objects, background_clicks)``: ``objects[j]`` starts with object j's first click
        (uniform among its pixels deeper than max DT / 1.7), then 0–5 extra clicks inside the
        object eroded by 3×3; then 0–6 background clicks (none at all with p = 0.2).
        Timestamps run 0, 1, 2, … in that order.
    """
    objects: list[list[TimedClick]] = []
    t = 0
    for mask in masks:
        dist = padded_distance(mask)
        deepest = float(dist.max())
        if deepest <= 0:
            raise ValueError("an object mask is empty: the dataset should have dropped it")
        # strictly deeper than max/1.7 always includes the maximum itself
        first = _pick(rng, np.argwhere(dist > deepest / FIRST_CLICK_DIVISOR), 1)
        chosen = first + _extra_clicks(rng, mask, MAX_EXTRA_POSITIVE)
        clicks = []
        for y, x in chosen:
            clicks.append(TimedClick(float(y), float(x), t))
            t += 1
        objects.append(clicks)
    bg_clicks: list[TimedClick] = []
    if rng.random() >= NO_BACKGROUND_PROB:
        for y, x in _extra_clicks(rng, background, MAX_BACKGROUND):
            bg_clicks.append(TimedClick(float(y), float(x), t))
            t += 1
    return objects, bg_clicks


def initial_click_set(
    masks: np.ndarray, background: np.ndarray, rng: np.random.Generator
) -> ClickSet:
    """:func:`sample_initial_clicks` as the model's :class:`ClickSet`."""
    from .model import ClickSet

    objects, bg_clicks = sample_initial_clicks(masks, background, rng)
    return ClickSet(objects=[list(o) for o in objects], background=list(bg_clicks))


def predicted_labels(
    logits: torch.Tensor, owner: torch.Tensor, n_objects: int, valid: np.ndarray
) -> np.ndarray:
    """The model's instance map for one crop, as the corrective sampler needs it.

    Args:
        logits: Q×h×w float, one image's final query logits (h×w = crop / 4).
        owner: Q long, query → object 1..N, 0 = background/static/padding.
        n_objects: N.
        valid: H×W bool, the crop's non-padding pixels.

    Returns:
        H×W int64: argmax over (background, object 1, …, object N), 0 where not ``valid``.

    Per object the logits are max-pooled over its queries *before* the bilinear upsampling to
    H×W (the official code upsamples every query first). The two differ only on boundary
    pixels where queries of one object cross, and this keeps memory at (N+1)×H×W instead of
    Q×H×W (Q reaches ~200 at 1024² crops).
    """
    q = logits.float()
    grouped = torch.full((n_objects + 1, *q.shape[1:]), float("-inf"), device=q.device)
    for index in range(n_objects + 1):
        mine = owner == index
        if bool(mine.any()):
            grouped[index] = q[mine].amax(dim=0)
    # an object without queries (never happens in training) must not produce -inf·0 = NaN
    grouped = torch.nan_to_num(grouped, neginf=-1e4)
    up = F.interpolate(grouped[None], size=valid.shape, mode="bilinear", align_corners=False)[0]
    labels = up.argmax(dim=0).cpu().numpy().astype(np.int64)
    labels[~valid] = 0
    return labels


def object_ious(pred: np.ndarray, gt: np.ndarray, n_objects: int, valid: np.ndarray) -> np.ndarray:
    """N float64 IoUs of objects 1..N between H×W int label maps, over ``valid`` pixels only."""
    ious = np.ones(n_objects, dtype=np.float64)
    for j in range(1, n_objects + 1):
        p, g = (pred == j) & valid, (gt == j) & valid
        union = np.count_nonzero(p | g)
        if union:
            ious[j - 1] = np.count_nonzero(p & g) / union
    return ious


def sample_corrective_clicks(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    next_t: int,
    rng: np.random.Generator,
) -> tuple[dict[int, list[TimedClick]], list[TimedClick]]:
    """One round of spec A3.3's corrective clicks for one crop.

    Args:
        pred: H×W int predicted instance map (0 background), e.g. :func:`predicted_labels`.
        gt: H×W int ground-truth instance map of the kept objects (0 = background, which
            includes objects not selected for this sample).
        valid: H×W bool non-padding pixels; padding is never an error.
        next_t: the first timestamp to use (previous maximum + 1).
        rng: the only source of randomness.

    Returns:
        ``(per_object, background_clicks)``: new clicks keyed by owner object id (1..N) and the
        new background clicks. The owner is the GT label *at the clicked pixel*, not the object
        being corrected: an FP click lying on another object becomes that object's positive.
        Up to 15 objects with IoU < 0.9 are corrected, worst first; each gets 1 click (p = 0.8)
        or 2 (p = 0.2) uniformly among pixels of its larger error region (FN = GT ∧ ¬pred or
        FP = ¬GT ∧ pred, by larger max DT; ties → FP) deeper than max DT / 2.
    """
    n_objects = int(gt.max(initial=0))
    ious = object_ious(pred, gt, n_objects, valid)
    failing = [j for j in np.argsort(ious, kind="stable") if ious[j] < CORRECTIVE_IOU]
    per_object: dict[int, list[TimedClick]] = {}
    bg_clicks: list[TimedClick] = []
    t = next_t
    for j in failing[:CORRECTIVE_MAX_OBJECTS]:
        obj_gt, obj_pred = gt == j + 1, pred == j + 1
        fn = padded_distance(obj_gt & ~obj_pred & valid)
        fp = padded_distance(~obj_gt & obj_pred & valid)
        dist = fn if fn.max() > fp.max() else fp
        deepest = float(dist.max())
        if deepest <= 0:
            continue  # IoU < 0.9 with no error pixel cannot happen; guard anyway
        count = 2 if rng.random() < TWO_CLICKS_PROB else 1
        for y, x in _pick(rng, np.argwhere(dist > deepest / CORRECTIVE_DIVISOR), count):
            click = TimedClick(float(y), float(x), t)
            t += 1
            owner = int(gt[y, x])
            if owner == 0:
                bg_clicks.append(click)
            else:
                per_object.setdefault(owner, []).append(click)
    return per_object, bg_clicks


def max_timestamp(clicks: ClickSet) -> int:
    """Largest timestamp in a click set (−1 when it holds no click)."""
    ts = [c[2] for obj in clicks.objects for c in obj] + [c[2] for c in clicks.background]
    return max(ts, default=-1)


def add_corrective_clicks(
    clicks: ClickSet, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, rng: np.random.Generator
) -> ClickSet:
    """``clicks`` extended by one round of :func:`sample_corrective_clicks` (a new ClickSet).

    Object j's new clicks go after its old ones; timestamps continue from the old maximum.
    """
    per_object, bg_clicks = sample_corrective_clicks(
        pred, gt, valid, max_timestamp(clicks) + 1, rng
    )
    objects = [[*obj, *per_object.get(j + 1, [])] for j, obj in enumerate(clicks.objects)]
    return type(clicks)(objects=objects, background=[*clicks.background, *bg_clicks])


def corrective_round(
    click_sets: Sequence[ClickSet],
    logits: torch.Tensor,
    owner: torch.Tensor,
    gts: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    rng: np.random.Generator,
) -> list[ClickSet]:
    """One corrective round for a whole batch, from the model's final prediction.

    Args:
        click_sets: B click sets, the ones the prediction was made from.
        logits: B×Q×h×w, the final prediction (``DecodeOutput.logits[-1]``).
        owner: B×Q long (``DecodeOutput.owner``).
        gts: B H×W int instance maps; valids: B H×W bool non-padding masks.

    Every image of the batch gets its clicks. The official ``get_next_clicks`` returns from
    inside its per-image loop, so only the first image of each per-GPU batch ever received
    corrective clicks (spec A7.1); correcting all of them is a deliberate fix.
    """
    out = []
    for b, clicks in enumerate(click_sets):
        n_objects = len(clicks.objects)
        pred = predicted_labels(logits[b], owner[b], n_objects, valids[b])
        out.append(add_corrective_clicks(clicks, pred, gts[b], valids[b], rng))
    return out
