"""DynaMITe's training loss (spec A3.4): point-sampled BCE + Dice on per-object logits.

Queries are tied to objects by construction (a click query belongs to the object it was
clicked on), so there is no Hungarian matching: for each image the per-query logit maps are
max-pooled into one map per object and one background map, and each is compared with its
target mask at 12,544 points chosen by PointRend's importance sampling (Mask2Former's recipe).

Targets are at the crop's full resolution H×W and the logits at H/4×W/4; both cover the same
padded extent, so a point in normalised [0, 1]² coordinates samples both consistently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NUM_POINTS = 12544  # 112², Mask2Former's TRAIN_NUM_POINTS
OVERSAMPLE_RATIO = 3.0  # candidates = 3 × NUM_POINTS
IMPORTANCE_RATIO = 0.75  # 75 % most uncertain candidates, 25 % uniform points
BCE_WEIGHT = 5.0
DICE_WEIGHT = 5.0
OFFICIAL_AUX_SUPERVISED = 9  # the weight table covers auxiliary predictions 0..8 only


@dataclass
class LossTargets:
    """One image's targets. ``masks``: (N+1)×H×W float in {0, 1}, index 0 the background mask
    (not(padding ∪ kept objects)), 1..N the de-overlapped objects in click-set order."""

    masks: torch.Tensor


def group_logits(logits: torch.Tensor, owner: torch.Tensor, n_objects: int) -> torch.Tensor:
    """Q×h×w query logits → (N+1)×h×w: index 0 the max over owner-0 queries (dynamic and
    static background, padding), index j the max over object j's click queries.

    A group with no query (an object without clicks cannot occur in training) gets a constant
    −1e4 map rather than −inf, so the loss stays finite.
    """
    groups = []
    for index in range(n_objects + 1):
        mine = owner == index
        if bool(mine.any()):
            groups.append(logits[mine].amax(dim=0))
        else:
            groups.append(logits.new_full(logits.shape[1:], -1e4))
    return torch.stack(groups)


def point_sample(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of M×h×w ``maps`` at M×P×2 ``points`` ((x, y) in [0, 1]², pixel-
    centre convention, i.e. ``grid_sample`` with align_corners=False) → M×P."""
    grid = 2.0 * points[:, :, None, :] - 1.0  # M×P×1×2
    return F.grid_sample(maps[:, None], grid, mode="bilinear", align_corners=False)[:, 0, :, 0]


def importance_points(
    logits: torch.Tensor,
    num_points: int = NUM_POINTS,
    *,
    oversample_ratio: float = OVERSAMPLE_RATIO,
    importance_ratio: float = IMPORTANCE_RATIO,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PointRend's training points for M×h×w ``logits`` → M×P×2 (x, y) in [0, 1]², no grad.

    Draw ``oversample_ratio·P`` uniform candidates, keep the ``importance_ratio·P`` whose
    logit is closest to 0 (most uncertain), then add uniform points up to P.
    """
    m = logits.shape[0]
    n_candidates = int(num_points * oversample_ratio)
    n_important = int(importance_ratio * num_points)
    device = logits.device
    with torch.no_grad():
        candidates = torch.rand(m, n_candidates, 2, generator=generator).to(device)
        uncertainty = -point_sample(logits.detach().float(), candidates).abs()
        keep = uncertainty.topk(n_important, dim=1).indices  # M×n_important
        chosen = torch.gather(candidates, 1, keep[..., None].expand(-1, -1, 2))
        uniform = torch.rand(m, num_points - n_important, 2, generator=generator).to(device)
        return torch.cat([chosen, uniform], dim=1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Σ over masks of 1 − (2Σσ(L)·y + 1)/(Σσ(L) + Σy + 1); M×P logits and targets → scalar."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Σ over masks of the point-averaged BCE with logits; M×P → scalar."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum()


def supervised_indices(n_predictions: int, *, official: bool = True) -> list[int]:
    """Which of the model's predictions (first … final) carry a loss.

    The official criterion computes a loss for the final output and every auxiliary one
    (before the encoder and after each encoder layer), but its weight table names only the
    first ``dec_layers − 1`` = 9 auxiliary outputs, so the prediction after the last encoder
    layer is silently dropped (spec A3.4, A7.3). ``official=True`` reproduces that: the final
    prediction plus all auxiliary ones except the last; with the released 11 predictions,
    indices 0..8 and 10. ``official=False`` supervises every prediction.
    """
    if n_predictions < 1:
        raise ValueError("no prediction to supervise")
    final = n_predictions - 1
    aux = list(range(final))
    if official and aux:
        aux = aux[:-1]
    return aux + [final]


def mask_losses(
    logits: torch.Tensor,
    owner: torch.Tensor,
    targets: Sequence[LossTargets],
    *,
    num_points: int = NUM_POINTS,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed (not yet normalised) BCE and Dice of one prediction over the batch.

    Args:
        logits: B×Q×h×w query logits of one prediction.
        owner: B×Q long, query → object 1..N (0 = background/static/padding).
        targets: B targets, image b's masks (N_b+1)×H×W.
    """
    bce = logits.new_zeros((), dtype=torch.float32)
    dice = logits.new_zeros((), dtype=torch.float32)
    for b, target in enumerate(targets):
        n_objects = target.masks.shape[0] - 1
        grouped = group_logits(logits[b].float(), owner[b], n_objects)
        points = importance_points(grouped, num_points, generator=generator)
        sampled_logits = point_sample(grouped, points)
        sampled_targets = point_sample(target.masks.to(grouped), points)
        bce = bce + bce_loss(sampled_logits, sampled_targets)
        dice = dice + dice_loss(sampled_logits, sampled_targets)
    return bce, dice


def dynamite_loss(
    predictions: Sequence[torch.Tensor],
    owner: torch.Tensor,
    targets: Sequence[LossTargets],
    *,
    num_points: int = NUM_POINTS,
    bce_weight: float = BCE_WEIGHT,
    dice_weight: float = DICE_WEIGHT,
    official_aux: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The total training loss and its parts (floats, for logging).

    Args:
        predictions: the model's logits, first … final (``DecodeOutput.logits``), B×Q×h×w.
        owner: B×Q long.
        targets: one :class:`LossTargets` per image.
        official_aux: see :func:`supervised_indices`.
        generator: CPU generator for the point sampling (the trainer seeds it per step so a
            resumed run is bit-identical).

    Every supervised prediction contributes ``bce_weight·BCE + dice_weight·Dice``, each
    divided by num_masks = Σ_images (N + 1), as the official criterion does on one GPU.
    Each prediction draws its own points (uncertainty depends on its own logits).
    """
    num_masks = max(float(sum(t.masks.shape[0] for t in targets)), 1.0)
    total = predictions[-1].new_zeros((), dtype=torch.float32)
    parts: dict[str, float] = {}
    for index in supervised_indices(len(predictions), official=official_aux):
        bce, dice = mask_losses(
            predictions[index], owner, targets, num_points=num_points, generator=generator
        )
        bce, dice = bce / num_masks, dice / num_masks
        total = total + bce_weight * bce + dice_weight * dice
        suffix = "" if index == len(predictions) - 1 else f"_{index}"
        parts[f"loss_bce{suffix}"] = float(bce.detach())
        parts[f"loss_dice{suffix}"] = float(dice.detach())
    return total, parts
