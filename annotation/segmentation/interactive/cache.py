"""The interactive worker's per-image predictor states: an LRU cache bounded in bytes.

One predictor per (image, method, backbone) holds that image's expensive state (features, the
M2N2 transition matrix, SALT's graph); the models behind them are shared (:mod:`.worker`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def state_nbytes(value: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Bytes held by arrays and tensors reachable from ``value`` (not the shared backbone)."""
    import torch

    seen = set() if seen is None else seen
    if id(value) in seen or depth > 4:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(state_nbytes(v, seen, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(state_nbytes(v, seen, depth + 1) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module):
        return sum(
            state_nbytes(v, seen, depth + 1) for k, v in vars(value).items() if k != "backbone"
        )
    try:  # scipy sparse matrices
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    except AttributeError:
        return 0


@dataclass
class Entry:
    predictor: Any
    scale: float  # working pixels per stored pixel (≤ 1)
    nbytes: int


class ImageStateCache:
    """LRU of per-image predictors, bounded in bytes (the newest entry always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and self.total_bytes > self.max_bytes:
            evicted, _ = self._entries.popitem(last=False)
            log.info("image state cache: evicted %s", evicted)

    @property
    def total_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
