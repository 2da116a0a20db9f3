"""Replaying prompts: clicks from every prompt kind, brush edits, the byte-bounded cache."""
from __future__ import annotations

import numpy as np

from annotation.segmentation.compute import _along, apply_edits, clicks_of
from annotation.segmentation.worker import Entry, ImageStateCache, _nbytes


def _p(kind, **payload):
    return {"kind": kind, "payload": payload, "method": "m2n2"}


def test_clicks_of_every_kind_at_the_working_scale():
    prompts = [
        _p("click", x=100.0, y=50.0, positive=True),
        _p("scribble", points=[[0.0, 0.0], [70.0, 0.0]], width=5.0, positive=False),
        _p("extreme_points", points=[[10.0, 20.0], [90.0, 20.0], [50.0, 5.0], [50.0, 40.0]]),
        _p("edit", points=[[1.0, 1.0]], width=3.0, mode="paint"),
    ]
    clicks = clicks_of(prompts, 0.5, (60, 80))
    assert (clicks[0].x, clicks[0].y, clicks[0].positive) == (50.0, 25.0, True)
    scribble = clicks[1:9]
    assert len(scribble) == 8 and not any(c.positive for c in scribble)
    assert scribble[0].x == 0.0 and scribble[-1].x == 35.0  # ends included, evenly spaced
    assert np.allclose(np.diff([c.x for c in scribble]), 5.0)
    assert [(c.x, c.y) for c in clicks[9:]] == [(5.0, 10.0), (45.0, 10.0), (25.0, 2.5), (25.0, 20.0)]
    assert len(clicks) == 13  # the edit is not a click


def test_along_a_single_point_and_a_short_stroke():
    assert _along([[3.0, 4.0]], 8) == [(3.0, 4.0)]
    assert len(_along([[0.0, 0.0], [2.0, 0.0]], 8)) == 3  # not more points than pixels


def test_edits_paint_then_erase_in_order():
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:20, 10:20] = True
    out = apply_edits(mask, [
        _p("click", x=1.0, y=1.0, positive=True),
        _p("edit", points=[[30.0, 5.0], [30.0, 35.0]], width=4.0, mode="paint"),
        _p("edit", points=[[15.0, 15.0]], width=5.0, mode="erase"),
    ])
    assert out[20, 30] and out[5, 30] and not out[20, 36]
    assert not out[15, 15] and out[11, 11]
    assert mask[15, 15] and not mask[20, 30]  # the input is left as it was


def test_cache_evicts_least_recently_used_by_bytes():
    cache = ImageStateCache(max_bytes=250)
    for i in range(3):
        cache.put((i, "m", "b"), Entry(object(), 1.0, 100))
    assert len(cache) == 2 and cache.get((0, "m", "b")) is None
    assert cache.get((1, "m", "b")) is not None  # 1 is now the most recent
    cache.put((3, "m", "b"), Entry(object(), 1.0, 100))
    assert cache.get((2, "m", "b")) is None and cache.get((1, "m", "b")) is not None
    big = Entry(object(), 1.0, 10_000)
    cache.put((9, "m", "b"), big)  # larger than the budget: it alone stays
    assert len(cache) == 1 and cache.get((9, "m", "b")) is big


def test_nbytes_counts_arrays_and_tensors_but_not_the_backbone():
    import torch

    class P:
        def __init__(self):
            self.backbone = torch.nn.Linear(1000, 1000)
            self.a = np.zeros(1000, np.float32)
            self.t = torch.zeros(10, dtype=torch.float64)
            self.maps = {(1, 2): torch.zeros(5, dtype=torch.int8)}

    assert _nbytes(P(), set()) == 4000 + 80 + 5
