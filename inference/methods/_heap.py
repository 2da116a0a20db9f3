"""A binary min-heap of (float64 key, int64 item) in two flat arrays, for numba code.

Shared by M2N2's min-max flood fill and MIS's Ward merging (both Dijkstra-like searches with
lazy deletion). The caller owns the arrays and the size. ``heap_push`` never reallocates
(returning the arrays from it made the flood fill 40 % slower); a caller whose heap can
outgrow its arrays calls ``heap_reserve`` before pushing.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def heap_reserve(keys, items, size):  # pragma: no cover - compiled
    """Room for one more entry: the same arrays, or copies twice as long when full."""
    if size < keys.shape[0]:
        return keys, items
    grown_keys = np.empty(2 * size + 16)
    grown_items = np.empty(2 * size + 16, np.int64)
    grown_keys[:size] = keys[:size]
    grown_items[:size] = items[:size]
    return grown_keys, grown_items


@numba.njit(cache=True)
def heap_push(keys, items, size, key, item):  # pragma: no cover - compiled
    """Add (key, item) (there must be room: see ``heap_reserve``); returns the new size."""
    child = size
    while child > 0:  # sift up
        parent = (child - 1) // 2
        if keys[parent] <= key:
            break
        keys[child] = keys[parent]
        items[child] = items[parent]
        child = parent
    keys[child] = key
    items[child] = item
    return size + 1


@numba.njit(cache=True)
def heap_pop(keys, items, size):  # pragma: no cover - compiled
    """Remove the root (read ``keys[0]``, ``items[0]`` first); returns the new size."""
    size -= 1
    key, item = keys[size], items[size]
    parent = 0
    while True:  # sift the last entry down from the root
        child = 2 * parent + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[parent] = keys[child]
        items[parent] = items[child]
        parent = child
    keys[parent] = key
    items[parent] = item
    return size
