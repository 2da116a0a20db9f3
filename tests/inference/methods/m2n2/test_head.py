"""M2N2's click head: its inputs, one forward for training and use, weights, the predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference import Click, build_predictor
from inference.evaluation.m2n2_head import ClickExample, choices, train
from inference.methods.m2n2.head import (
    CELL_INPUTS,
    DEFAULT_HEAD,
    ClickHead,
    cell_inputs,
    click_cell,
    forward,
    grid_members,
    reduce_features,
    soft_iou,
)

GRID = (6, 8)
N = GRID[0] * GRID[1]


def test_cell_inputs_are_relative_to_the_clicked_cell():
    rng = np.random.default_rng(0)
    walk = torch.from_numpy(rng.random(N)).float()
    cell = click_cell(x=50, y=20, work_hw=(60, 80), grid_hw=GRID)
    assert cell == 2 * 8 + 5  # row 20 / 10 px, column 50 / 10 px
    walk[cell] = 0.0
    colour = torch.from_numpy(rng.random((N, 3))).float()
    x = cell_inputs(walk, colour, GRID, cell)
    assert x.shape == (N, len(CELL_INPUTS))
    named = dict(zip(CELL_INPUTS, x.T, strict=True))
    assert named["walk_rank"][cell] == 0 and named["walk_start"][cell] == 1
    assert named["walk_start"].sum() == 1
    for name in ("dy", "dx", "offset", "dr", "dg", "db"):
        assert named[name][cell] == 0
    assert named["dx"][cell + 1] == pytest.approx(1 / 8)  # one cell right, in long sides
    assert torch.equal(torch.stack([named["r"], named["g"], named["b"]], 1), colour)


def test_segments_on_the_grid_and_their_soft_iou():
    dist = torch.zeros(12, 16)
    dist[:, 8:] = 1.0  # the left half is the segment at threshold 0.5
    members = grid_members(dist, torch.tensor([0.5, 1.0]), (3, 4))
    assert torch.equal(members[0].reshape(3, 4)[:, :2], torch.ones(3, 2))
    assert members[0].sum() == 6 and members[1].sum() == 12
    probs = members[0].clone()  # certain of the left half
    assert soft_iou(probs, members).tolist() == pytest.approx([1.0, 0.5])


def _examples(channels: int, clicks: int = 24, seed: int = 0) -> list[ClickExample]:
    """Two kinds of cells (two feature directions): the clicked cell's kind is the object."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, channels))
    out = []
    for _ in range(clicks):
        kind = rng.integers(0, 2, N)
        features = centres[kind] + 0.3 * rng.normal(size=(N, channels))
        cell = int(rng.integers(0, N))
        truth = (kind == kind[cell]).astype(np.float32)
        walk = torch.from_numpy(rng.random(N)).float()
        colour = torch.from_numpy(rng.random((N, 3))).float()
        members = torch.from_numpy(np.stack([truth, 1 - truth, np.ones(N)])).float()
        out.append(
            ClickExample(
                set_name="synthetic",
                first=True,
                features=torch.from_numpy(features).float(),
                cell=cell,
                inputs=cell_inputs(walk, colour, GRID, cell),
                truth=torch.from_numpy(truth),
                valid=torch.ones(N),
                members=members.half(),
                scorer_features=torch.zeros(3, 16),
                ious=np.array([1.0, 0.0, float(truth.mean())], np.float32),
            )
        )
    return out


def test_training_learns_which_cells_go_with_the_click_and_one_forward_serves_both():
    examples = _examples(channels=40)
    head = ClickHead(train(examples, epochs=150))
    unseen = _examples(channels=40, clicks=6, seed=0)[:6]  # same centres, fresh draws below
    for e in unseen:
        probs = head.probabilities(e.features, e.inputs, e.cell)
        inside, outside = probs[e.truth > 0], probs[e.truth == 0]
        assert float(inside.mean()) > float(outside.mean()) + 0.3
    assert choices(head, unseen).mean() == pytest.approx(1.0)  # the object's own segment
    # the training batch (two clicks' cells stacked) and the per-click call agree
    a, b = examples[:2]
    p = head.params
    reduced = torch.cat([reduce_features(p, a.features), reduce_features(p, b.features)])
    cells = torch.cat([torch.full((N,), a.cell), torch.full((N,), N + b.cell)])
    batch = torch.sigmoid(forward(p, reduced, cells, torch.cat([a.inputs, b.inputs])))
    single = torch.cat([head.probabilities(e.features, e.inputs, e.cell) for e in (a, b)])
    torch.testing.assert_close(batch, single)


def test_weights_are_checked():
    weights = dict(np.load(DEFAULT_HEAD))
    assert DEFAULT_HEAD.stat().st_size < 256_000  # a few tens of KB in the package
    head = ClickHead(weights)
    with pytest.raises(ValueError, match="344-channel"):
        head.probabilities(torch.zeros(N, 40), torch.zeros(N, len(CELL_INPUTS)), 0)
    with pytest.raises(ValueError, match="lack"):
        ClickHead({k: v for k, v in weights.items() if k != "w2"})
    with pytest.raises(ValueError, match="inputs"):
        ClickHead({**weights, "inputs": np.array(["walk_rank"])})


def _scene() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    img[24:72, 32:96] = rng.integers(190, 230, size=(48, 64, 3), dtype=np.uint8)
    return img


def test_the_predictor_averages_the_scorer_and_the_head():
    # tiny-effnet is lite0 with random weights: on M2N2's stages (2, 4, 5: 344 channels) the
    # packaged head reads it
    options = {"backbone": "tiny-effnet", "backbone_options": {"stages": [2, 4, 5]}}
    with_head = build_predictor("m2n2", refine_band=0, head=str(DEFAULT_HEAD), **options)
    alone = build_predictor("m2n2", refine_band=0, head=None, **options)
    img = _scene()
    for p in (with_head, alone):
        p.set_image(img)
        p.predict([Click(x=64, y=48)])
    key = (64, 48)
    thresholds, score, _ = with_head._candidates[(*key, True)]
    same, scorer_only, _ = alone._candidates[(*key, True)]
    assert torch.equal(thresholds, same)
    features, colour = with_head.grid_features()
    cell = click_cell(*key, with_head._work_hw, with_head._grid_hw)
    probs = with_head.head(features, with_head.walk_map(key), colour, with_head._grid_hw, cell)
    members = grid_members(with_head._maps[key], thresholds, with_head._grid_hw)
    expected = (scorer_only + soft_iou(probs, members).double()) / 2
    torch.testing.assert_close(score, expected)
    assert bool(((score >= 0) & (score <= 1)).all())


def test_a_backbone_of_other_channels_ranks_with_the_scorer_alone():
    p = build_predictor(  # stages 2, 4
        "m2n2", backbone="tiny-effnet", refine_band=0, head=str(DEFAULT_HEAD)
    )
    p.set_image(_scene())
    assert p.grid_features()[0].shape[1] == 40 + 112
    result = p.predict([Click(x=64, y=48)])
    assert result.mask[48, 64]
    alone = build_predictor("m2n2", backbone="tiny-effnet", refine_band=0, head=None)
    alone.set_image(_scene())
    assert np.array_equal(alone.predict([Click(x=64, y=48)]).mask, result.mask)


def test_the_packaged_head_is_the_default_only_on_the_features_it_was_trained_on():
    from types import SimpleNamespace

    from inference.backbones.base import build_backbone
    from inference.methods.m2n2.head import default_head

    assert default_head(SimpleNamespace(name="effnet-lite0", stages=(2, 4, 5))) == str(DEFAULT_HEAD)
    for other in (
        SimpleNamespace(name="effnet-lite1", stages=(2, 4, 5)),  # lite0's width, other features
        SimpleNamespace(name="effnet-lite0", stages=(2, 4)),
        SimpleNamespace(name="dinov2-vits14"),  # no stages at all
    ):
        assert default_head(other) is None
    # the predictor's default ("auto"): tiny-effnet is lite0's code with random weights, so
    # only named as lite0 does it get the head; under its own name it ranks with the scorer
    backbone = build_backbone("tiny-effnet", stages=(2, 4, 5))
    assert build_predictor("m2n2", backbone=backbone).head is None
    backbone.name = "effnet-lite0"
    assert build_predictor("m2n2", backbone=backbone).head is not None
    assert build_predictor("m2n2", backbone=backbone, scorer=None).head is None
    assert build_predictor("m2n2", backbone=backbone, head=None).head is None
