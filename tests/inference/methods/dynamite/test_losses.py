"""DynaMITe's point-sampled BCE + Dice loss (spec A3.4)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inference.methods.dynamite.losses import (
    LossTargets,
    dice_loss,
    dynamite_loss,
    group_logits,
    importance_points,
    point_sample,
    supervised_indices,
)


def test_group_logits_takes_max_per_object_and_background():
    logits = torch.arange(5 * 2 * 3, dtype=torch.float32).reshape(5, 2, 3)
    owner = torch.tensor([1, 2, 1, 0, 0])
    grouped = group_logits(logits, owner, 2)
    assert grouped.shape == (3, 2, 3)
    assert torch.equal(grouped[0], logits[4]) and torch.equal(grouped[1], logits[2])
    assert torch.equal(grouped[2], logits[1])
    # an object with no query gets a finite, very negative map
    assert (group_logits(logits, owner, 3)[3] == -1e4).all()


def test_point_sample_uses_pixel_centres():
    maps = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    # the centre of pixel (row 1, col 2) is at ((2 + .5)/4, (1 + .5)/3) in (x, y)
    points = torch.tensor([[[2.5 / 4, 1.5 / 3], [0.5 / 4, 0.5 / 3]]])
    assert torch.allclose(point_sample(maps, points), torch.tensor([[6.0, 0.0]]), atol=1e-5)


def test_importance_points_prefer_uncertain_regions():
    logits = torch.full((1, 32, 32), 10.0)
    logits[0, :, 16:] = 0.0  # right half: maximally uncertain
    g = torch.Generator().manual_seed(0)
    points = importance_points(logits, 1000, generator=g)
    assert points.shape == (1, 1000, 2) and (points >= 0).all() and (points <= 1).all()
    right = (points[0, :, 0] > 0.5).float().mean()
    # 75 % chosen from 3000 candidates (≈1500 on the right) + 25 % uniform ≈ 0.875 on the right
    assert 0.8 < right < 0.95


def test_dice_matches_formula_and_is_zero_for_a_perfect_prediction():
    logits = torch.tensor([[20.0, 20.0, -20.0, -20.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert dice_loss(logits, targets) < 1e-6
    zero = torch.zeros(1, 4)
    # σ(0) = ½ everywhere: 1 − (2·1 + 1)/(2 + 2 + 1)
    assert dice_loss(zero, targets).item() == pytest.approx(1 - 3 / 5)


def test_supervised_indices_reproduce_the_official_table():
    assert supervised_indices(11) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert supervised_indices(11, official=False) == list(range(11))
    assert supervised_indices(1) == [0]


def _targets(h=32, w=32):
    obj = torch.zeros(h, w)
    obj[8:24, 8:24] = 1
    padding = torch.zeros(h, w, dtype=torch.bool)
    padding[:, 28:] = True
    bg = (~padding & (obj == 0)).float()
    return LossTargets(torch.stack([bg, obj]))


def test_loss_normalisation_weights_and_gradient():
    targets = [_targets(), _targets()]
    owner = torch.tensor([[1, 0, 0], [1, 1, 0]])
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    preds = [logits * 1.0 for _ in range(3)]
    g = torch.Generator().manual_seed(0)
    total, parts = dynamite_loss(preds, owner, targets, num_points=256, generator=g)
    # three predictions: the final and aux 0 are supervised, aux 1 (the last aux) dropped
    assert set(parts) == {"loss_bce", "loss_dice", "loss_bce_0", "loss_dice_0"}
    # logits 0: BCE is ln 2 per mask; 4 masks over num_masks = 4 → ln 2 per prediction
    assert parts["loss_bce"] == pytest.approx(float(torch.log(torch.tensor(2.0))), rel=1e-5)
    expected = sum(5.0 * parts[k] for k in parts)
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_loss_falls_when_logits_match_targets():
    targets = [_targets()]
    owner = torch.tensor([[1, 0]])
    t = targets[0].masks
    small = F.interpolate(t[None], size=(8, 8), mode="area")[0]
    # query 0 is the object (target index 1), query 1 the background (index 0):
    # +10 where the target is 1, −10 elsewhere
    good = (small[[1, 0]] * 2 - 1)[None] * 10.0
    bad = -good
    g = torch.Generator().manual_seed(0)
    loss_good, _ = dynamite_loss([good], owner, targets, num_points=512, generator=g)
    loss_bad, _ = dynamite_loss([bad], owner, targets, num_points=512, generator=g)
    assert loss_good < 0.5 * loss_bad


def test_same_generator_seed_gives_the_same_loss():
    targets = [_targets()]
    owner = torch.tensor([[1, 0, 0]])
    logits = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    a, _ = dynamite_loss(
        [logits], owner, targets, num_points=300, generator=torch.Generator().manual_seed(9)
    )
    b, _ = dynamite_loss(
        [logits], owner, targets, num_points=300, generator=torch.Generator().manual_seed(9)
    )
    assert a.item() == b.item()
