"""Full-resolution steps of M2N2: the min-max flood fill (joint bilateral upsampling, shared
with SALT, lives in :mod:`inference.imaging`)."""

from __future__ import annotations

import numba
import numpy as np

from ...imaging import joint_bilateral_upsample  # noqa: F401  (re-exported: its home before imaging)
from .._heap import heap_pop, heap_push


def minmax_flood_fill(values: np.ndarray, start_yx: tuple[int, int]) -> np.ndarray:
    """Bottleneck distance from a start pixel: for every pixel, the minimum over 4-connected
    paths from the start of the maximum |value − value(start)| along the path.

    ``values``: (H, W) float. Returns (H, W) float64 with 0 at the start. A Dijkstra search
    with ``max`` in place of ``+``, compiled with numba as the official code does. It equals a
    grayscale reconstruction by erosion (scikit-image's ``reconstruction``, the reference in
    the tests); on a 512×352 map this takes 0.017 s against 0.104 s for scikit-image.
    """
    y, x = start_yx
    deviation = np.abs(values.astype(np.float64) - float(values[y, x]))
    return _bottleneck_from(deviation, int(y), int(x))


@numba.njit(cache=True)
def _bottleneck_from(cost: np.ndarray, sy: int, sx: int) -> np.ndarray:  # pragma: no cover
    """Minimax path cost from (sy, sx) over a 4-connected grid; ``cost``: (H, W) float64 ≥ 0.

    Lazy deletion: a pixel may be pushed once per neighbour, so the heap holds at most 4·H·W
    entries (allocated up front; it never grows).
    """
    h, w = cost.shape
    out = np.full((h, w), np.inf)
    done = np.zeros((h, w), np.bool_)
    keys = np.empty(4 * h * w + 1)
    items = np.empty(4 * h * w + 1, np.int64)
    out[sy, sx] = cost[sy, sx]
    size = heap_push(keys, items, 0, out[sy, sx], sy * w + sx)
    while size > 0:
        key = keys[0]
        flat = items[0]
        size = heap_pop(keys, items, size)
        y = flat // w
        x = flat - y * w
        if done[y, x]:
            continue
        done[y, x] = True
        for d in range(4):
            ny = y + (d == 0) - (d == 1)
            nx = x + (d == 2) - (d == 3)
            if ny < 0 or ny >= h or nx < 0 or nx >= w or done[ny, nx]:
                continue
            value = max(key, cost[ny, nx])
            if value < out[ny, nx]:
                out[ny, nx] = value
                size = heap_push(keys, items, size, value, ny * w + nx)
    return out
