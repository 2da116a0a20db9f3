"""M2N2's Markov machinery: temperature, IPF, start states and iteration maps.

All on torch tensors so the same code runs on CPU and CUDA. Shapes: the affinity is (N, N)
over an h×w token grid in raster order (row = query token); maps are (h, w).
"""

from __future__ import annotations

import torch

from ...interrupt import checkpoint


def change_temperature(affinity: torch.Tensor, temperature: float = 0.65) -> torch.Tensor:
    """Row-wise ``softmax(log(A) / T)``, i.e. ``A ** (1/T)`` renormalised per row; zeros stay 0.

    ``affinity``: (N, N) non-negative float32. Returns a new (N, N) row-stochastic tensor.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    # log-sum-exp form: numerically safe for tiny entries, exact zeros map to -inf -> 0.
    out = torch.log(affinity.clamp_min(0)).div_(temperature)
    return torch.softmax(out, dim=1)


def matrix_ipf(matrix: torch.Tensor, iterations: int = 200) -> torch.Tensor:
    """Iterative proportional fitting (Sinkhorn): columns then rows, a fixed number of steps.

    After the last step rows sum to 1 exactly and columns approximately (doubly stochastic).
    Works in place on a copy, so the peak memory is one extra (N, N) tensor.
    """
    out = matrix.clone()
    for step in range(iterations):
        if step % 10 == 0:  # 10 steps ≈ 15 ms at 1024 px on 2 cores: a prefetch stops here
            checkpoint()
        out.div_(out.sum(dim=0, keepdim=True).clamp_min(1e-30))
        out.div_(out.sum(dim=1, keepdim=True).clamp_min(1e-30))
    return out


def start_states(
    points_xy: torch.Tensor, image_hw: tuple[int, int], grid_hw: tuple[int, int]
) -> torch.Tensor:
    """Bilinear one-hot start vectors for clicks, max-normalised.

    ``points_xy``: (P, 2) float pixel coordinates (x, y) in the image. The mapping follows the
    official code: ``u = (w_grid - 1) * x / W``, ``v = (h_grid - 1) * y / H``. Returns (P, N).
    """
    height, width = image_hw
    gh, gw = grid_hw
    u = (gw - 1) * points_xy[:, 0] / width
    v = (gh - 1) * points_xy[:, 1] / height
    u0 = u.floor().clamp(0, gw - 1)
    v0 = v.floor().clamp(0, gh - 1)
    du, dv = u - u0, v - v0
    u1 = (u0 + 1).clamp(max=gw - 1)
    v1 = (v0 + 1).clamp(max=gh - 1)
    states = torch.zeros(points_xy.shape[0], gh * gw, dtype=torch.float32, device=points_xy.device)
    rows = torch.arange(points_xy.shape[0], device=points_xy.device)
    for uu, vv, w in (
        (u0, v0, (1 - du) * (1 - dv)),
        (u1, v0, du * (1 - dv)),
        (u0, v1, (1 - du) * dv),
        (u1, v1, du * dv),
    ):
        states.index_put_((rows, (vv * gw + uu).long()), w.float(), accumulate=True)
    return states / states.amax(dim=1, keepdim=True)


def markov_maps(
    transition: torch.Tensor,
    starts: torch.Tensor,
    threshold: float = 0.3,
    max_steps: int = 1000,
    interpolate: bool = True,
) -> torch.Tensor:
    """Crossing times of a max-normalised Markov chain, for all start states at once.

    ``transition``: (N, N) doubly stochastic. ``starts``: (P, N), max 1 per row. At each step
    ``p ← p·A; p ← p / max(p)``; a cell's value is the (linearly interpolated) step at which it
    first exceeds ``threshold``; cells already above it at step 0 get 0, cells that never cross
    keep ``max_steps``. One batched (P, N)×(N, N) product per step serves every click.
    Returns (P, N) float32.
    """
    state = starts.clone()
    out = torch.full_like(state, float(max_steps))
    crossed = state > threshold
    out[crossed] = 0.0
    previous = state
    for step in range(max_steps):
        if bool(crossed.all()):
            break
        state = previous @ transition
        state = state / state.amax(dim=1, keepdim=True).clamp_min(1e-30)
        newly = (state > threshold) & ~crossed
        if interpolate:
            # The official code uses Δ = 1 − τ on the first step (the splat's own max is 1).
            delta = (1.0 - threshold) if step == 0 else (state - previous)
            value = step + 1 - (state - threshold) / (delta + 1e-6)
        else:
            value = torch.full_like(state, float(step + 1))
        out = torch.where(newly, value, out)
        crossed |= newly
        previous = state
    return out
