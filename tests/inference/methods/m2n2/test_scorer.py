"""M2N2's learned candidate scorer: features against brute force, weights, candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference import Click, build_predictor
from inference.evaluation.m2n2_scorer import choice_quality, train
from inference.methods.m2n2.refine import minmax_flood_fill
from inference.methods.m2n2.scorer import (
    DEFAULT_WEIGHTS,
    FEATURES,
    Scorer,
    candidate_features,
    image_gradient,
)


def _map(seed: int, hw=(23, 31)) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    raw = rng.random(hw)
    raw = np.round(raw * 20) / 20  # ties: plateaus like the flood fill's
    filled = minmax_flood_fill(raw, (hw[0] // 2, hw[1] // 2))
    return torch.from_numpy(filled / filled.max()).float()


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Outer 4-neighbour boundary: pixels outside the mask with a neighbour inside."""
    padded = np.pad(mask, 1)
    near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return near & ~mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_match_brute_force(seed):
    dist = _map(seed)
    rng = np.random.default_rng(seed + 10)
    guide = torch.from_numpy(rng.random((3, *dist.shape))).float()
    grad = image_gradient(guide)
    found = candidate_features(dist, guide, grad)
    assert found.features.shape == (40, len(FEATURES))
    feats = dict(zip(FEATURES, found.features.T.numpy(), strict=True))
    d, g, img = dist.numpy(), grad.numpy(), guide.numpy()
    for k, threshold in enumerate(found.thresholds.tolist()):
        mask = d <= threshold
        assert mask.sum() == found.sizes[k]  # the segment is the whole plateau
        assert feats["area"][k] == pytest.approx(mask.mean(), rel=1e-5)
        ring = _boundary(mask)
        if ring.any():
            assert feats["image_edge"][k] == pytest.approx(g[ring].mean(), rel=1e-4, abs=1e-6)
            inside, outside = img[:, mask], img[:, ~mask]
            contrast = np.linalg.norm(inside.mean(1) - outside.mean(1))
            assert feats["colour_contrast"][k] == pytest.approx(contrast, rel=1e-4, abs=1e-6)
        ys, xs = np.nonzero(mask)
        assert feats["box_width"][k] == pytest.approx((xs.max() - xs.min() + 1) / d.shape[1])
        touches = [xs.min() == 0, ys.min() == 0, xs.max() == d.shape[1] - 1]
        sides = sum(map(int, [*touches, ys.max() == d.shape[0] - 1]))
        assert feats["border_sides"][k] == pytest.approx(sides / 4)


def test_shipped_weights_load_and_score_in_unit_range():
    scorer = Scorer.load(DEFAULT_WEIGHTS)
    assert DEFAULT_WEIGHTS.stat().st_size < 64_000  # a few KB in the package
    scores = scorer(torch.randn(7, len(FEATURES)))
    assert scores.shape == (7,) and bool(((scores >= 0) & (scores <= 1)).all())


def test_weights_of_other_features_are_refused():
    weights = dict(np.load(DEFAULT_WEIGHTS))
    weights["features"] = np.array(["area"])
    with pytest.raises(ValueError, match="trained on features"):
        Scorer(weights)


def test_training_learns_a_ranking_it_can_recover():
    # Synthetic clicks: the IoU is a hidden function of two features; training must rank.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40, len(FEATURES))).astype(np.float32)
    y = 1 / (1 + np.exp(-(2 * x[..., 0] - x[..., 4]))).astype(np.float32)
    scorer = Scorer(train(x, y, epochs=300))
    scores = scorer(torch.from_numpy(x)).numpy()
    chosen, _, oracle = choice_quality(scores, y)
    assert chosen > 0.95 * oracle


def test_first_click_gives_ranked_distinct_candidates():
    rng = np.random.default_rng(0)
    img = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    img[24:72, 32:96] = rng.integers(190, 230, size=(48, 64, 3), dtype=np.uint8)
    p = build_predictor("m2n2", backbone="tiny-effnet", refine_band=0)
    p.set_image(img)
    assert p.predict([Click(x=64, y=48), Click(x=5, y=5, positive=False)]).candidates == []
    for clicks in ([Click(x=64, y=48)],):  # a lone click is ambiguous: three masks
        result = p.predict(clicks)
        assert len(result.candidates) == 3  # the click's three best segments
        assert np.array_equal(result.candidates[0].mask, result.mask)
        assert result.candidates[0].score == result.score
        scores = [c.score for c in result.candidates]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        areas = [int(c.mask.sum()) for c in result.candidates]
        assert len(set(areas)) == 3  # distinct masks
        assert all(c.mask[48, 64] for c in result.candidates)
    paper = build_predictor("m2n2", backbone="tiny-effnet", refine_band=0, scorer=None)
    paper.set_image(img)
    plain = paper.predict([Click(x=64, y=48)])
    assert plain.score is None and all(c.score is None for c in plain.candidates)


def test_m2n2_takes_stage_5_of_an_effnet_unless_told_otherwise():
    from inference.methods.m2n2.predictor import EFFNET_STAGES, build_m2n2

    assert build_m2n2(backbone="tiny-effnet").backbone.stages == (2, 4)  # not an effnet-lite
    lite = build_m2n2(backbone="effnet-lite0")
    assert lite.backbone.stages == EFFNET_STAGES == (2, 4, 5)
    previous = build_m2n2(backbone="effnet-lite0", backbone_options={"stages": [2, 4]})
    assert previous.backbone.stages == (2, 4)


def test_the_papers_choice_ranks_candidates_too_and_keeps_its_first_pick():
    rng = np.random.default_rng(0)
    img = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    img[24:72, 32:96] = rng.integers(190, 230, size=(48, 64, 3), dtype=np.uint8)
    ranked = build_predictor("m2n2", backbone="tiny-effnet", refine_band=0, scorer=None)
    single = build_predictor(
        "m2n2", backbone="tiny-effnet", refine_band=0, scorer=None, num_candidates=1
    )
    for p in (ranked, single):
        p.set_image(img)
    clicks = [Click(x=64, y=48)]
    many, one = ranked.predict(clicks), single.predict(clicks)
    assert np.array_equal(many.mask, one.mask) and one.candidates == []
    assert 2 <= len(many.candidates) <= 3 and many.score is None
    areas = [int(c.mask.sum()) for c in many.candidates]
    assert len(set(areas)) == len(areas)


def test_snap_moves_a_learned_threshold_to_the_sharpest_edge_between_its_neighbours():
    from inference.methods.m2n2.thresholds import ScoreSwitches

    p = build_predictor("m2n2", backbone="tiny-effnet", refine_band=0)
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    # a distance map rising slowly, with one cliff at radius 9 (an object's boundary)
    dist = torch.from_numpy(np.where(radius < 9, radius * 0.01, 0.5 + radius * 0.01)).float()
    dist /= dist.max()
    here = dist[20, 20:21]
    factors = (here, here[:0], dist.max(), ScoreSwitches())
    learned = torch.tensor([0.01, 0.05, 0.9])
    scale = 1 / (0.5 + float(radius.max()) * 0.01)  # dist's normalisation
    assert 0.05 / scale / 0.01 < 4  # the learned choice: a disk of radius < 4
    snapped = p._snap((20, 20), dist, 0.05, learned, factors)
    # moved to the ring just inside the cliff (radius 8 to 9), between 0.01 and 0.9
    assert 8 <= snapped / scale / 0.01 < 9
    p.snap = False
    assert p._snap((20, 20), dist, 0.05, learned, factors) == 0.05
