"""M2N2's numerical pieces against hand-built cases and brute force."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
import torch

from inference.methods.m2n2.markov import change_temperature, markov_maps, matrix_ipf, start_states
from inference.methods.m2n2.refine import joint_bilateral_upsample, minmax_flood_fill
from inference.methods.m2n2.thresholds import (
    ScoreSwitches,
    choose_threshold,
    integer_sobel,
    truncated_nearest_neighbour,
)


def _block_affinity(grid: int = 8, leak: float = 1e-4) -> torch.Tensor:
    """Left half and right half of a grid×grid map attend within themselves."""
    n = grid * grid
    side = (torch.arange(n) % grid) < grid // 2
    same = side[:, None] == side[None, :]
    a = torch.where(same, 1.0, leak)
    return a / a.sum(1, keepdim=True)


def test_ipf_is_doubly_stochastic_and_temperature_keeps_rows():
    torch.manual_seed(0)
    a = torch.rand(50, 50) ** 4
    a /= a.sum(1, keepdim=True)
    t = change_temperature(a, 0.65)
    assert torch.allclose(t.sum(1), torch.ones(50), atol=1e-6)
    assert torch.allclose(t, (a ** (1 / 0.65)) / (a ** (1 / 0.65)).sum(1, keepdim=True), atol=1e-6)
    d = matrix_ipf(t, 200)
    assert (d >= 0).all()
    assert torch.allclose(d.sum(1), torch.ones(50), atol=1e-4)
    assert torch.allclose(d.sum(0), torch.ones(50), atol=1e-4)


def test_start_state_is_a_bilinear_splat_with_max_one():
    s = start_states(torch.tensor([[10.0, 20.0], [0.0, 0.0]]), (40, 40), (8, 8))
    assert torch.allclose(s.amax(1), torch.ones(2))
    assert (s[0] > 0).sum() <= 4 and (s[1] > 0).sum() == 1 and s[1, 0] == 1


def test_markov_map_separates_the_blocks():
    transition = matrix_ipf(change_temperature(_block_affinity()), 200)
    starts = start_states(torch.tensor([[0.0, 0.0], [39.0, 39.0]]), (40, 40), (8, 8))
    maps = markov_maps(transition, starts, threshold=0.3, max_steps=1000).view(2, 8, 8)
    left, right = maps[0], maps[1]
    assert left[0, 0] == 0 and right[7, 7] == 0
    # every cell of the clicked block crosses before any cell of the other block
    assert left[:, :4].max() < left[:, 4:].min()
    assert right[:, 4:].max() < right[:, :4].min()
    assert maps.max() <= 1000


def _brute_minmax(values: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    dev = np.abs(values - values[start])
    best = np.full(values.shape, np.inf)
    best[start] = dev[start]
    heap = [(dev[start], start)]
    while heap:
        key, (y, x) = heapq.heappop(heap)
        if key > best[y, x]:
            continue
        for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
            if 0 <= ny < values.shape[0] and 0 <= nx < values.shape[1]:
                cand = max(key, dev[ny, nx])
                if cand < best[ny, nx]:
                    best[ny, nx] = cand
                    heapq.heappush(heap, (cand, (ny, nx)))
    return best


@pytest.mark.parametrize("seed", range(15))
def test_flood_fill_matches_brute_force_minmax_paths(seed):
    rng = np.random.default_rng(seed)
    values = rng.random((rng.integers(2, 16), rng.integers(2, 16)))
    start = (int(rng.integers(values.shape[0])), int(rng.integers(values.shape[1])))
    assert np.allclose(minmax_flood_fill(values, start), _brute_minmax(values, start))


def test_jbu_keeps_constants_and_respects_edges():
    guide = torch.zeros(3, 40, 40)
    guide[:, :, 20:] = 1.0  # a hard colour edge down the middle
    const = joint_bilateral_upsample(torch.full((1, 8, 8), 3.0), guide)
    assert torch.allclose(const, torch.full_like(const, 3.0), atol=1e-5)
    low = torch.zeros(1, 8, 8)
    low[:, :, 4:] = 1.0
    up = joint_bilateral_upsample(low, guide)[0]
    bilinear = torch.nn.functional.interpolate(low[None], size=(40, 40), mode="bilinear")[0, 0]
    ideal = (torch.arange(40) >= 20).float().expand(40, 40)
    # bilinear smears the step across the colour edge (0.4 | 0.6 at columns 19 | 20); the
    # range term pulls each side back to its own colour
    assert (bilinear[:, 19] > 0.3).all() and (up[:, 19] < 0.15).all() and (up[:, 20] > 0.85).all()
    assert (up - ideal).abs().mean() < (bilinear - ideal).abs().mean()


def _brute_threshold(dist, same, opp, max_area):
    flat = dist.flatten()
    order = np.argsort(flat, kind="stable")
    n = flat.size
    grad = integer_sobel(torch.from_numpy(dist)).numpy().flatten()
    h, w = dist.shape
    best, best_t = -1.0, None
    inside = np.zeros(n, bool)
    for k in range(n - 1):
        inside[order[k]] = True
        t = flat[order[k]]
        seg = inside.reshape(h, w)
        border = np.zeros_like(seg)
        border[1:] |= seg[:-1]
        border[:-1] |= seg[1:]
        border[:, 1:] |= seg[:, :-1]
        border[:, :-1] |= seg[:, 1:]
        border &= ~seg
        edge = grad[border.flatten()].mean() if border.any() else 0.0
        prior = float(k / (n - 2) < max_area)
        pos = np.mean(same <= t)
        neg = float(t < (opp.min() if opp.size else flat.max()))
        score = prior * edge * pos * neg
        if score > best:
            best, best_t = score, t
    return best_t


@pytest.mark.parametrize("seed", range(6))
def test_threshold_choice_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    dist = rng.random((7, 9))
    dist[2, 3] = 0.0
    same = np.array([0.0, dist[4, 4]])
    opp = np.array([dist[6, 8]]) if seed % 2 else np.array([])
    got = choose_threshold(
        torch.from_numpy(dist), torch.from_numpy(same), torch.from_numpy(opp), 0.4, ScoreSwitches()
    )
    assert got == pytest.approx(_brute_threshold(dist, same, opp, 0.4))


def test_truncated_nearest_neighbour_vote():
    d = torch.tensor([[[0.0, 0.5, 2.0]], [[2.0, 0.4, 0.0]]])  # two clicks on a 1×3 image
    mask = truncated_nearest_neighbour(
        d, torch.tensor([1.0, 1.0]), torch.tensor([True, False]), torch.tensor([[0, 0], [0, 2]])
    )
    assert mask.tolist() == [[True, False, False]]
