"""Replaying prompts: typed prompts from every logged kind, brush edits, the byte-bounded cache."""

from __future__ import annotations

import numpy as np

from annotation.segmentation.interactive.cache import Entry, ImageStateCache, state_nbytes
from annotation.segmentation.interactive.compute import apply_edits, prompts_of, typed_prompt


def _p(kind, id=0, **payload):
    return {"id": id, "kind": kind, "payload": payload, "method": "m2n2"}


def test_prompt_rows_become_typed_prompts_at_the_working_scale_in_the_order_made():
    from inference import Click, ExtremePoints, Scribble

    objects = {
        7: [
            _p("click", 1, x=100.0, y=50.0, positive=True),
            _p("edit", 4, points=[[1.0, 1.0]], width=3.0, mode="paint"),
            _p("extreme_points", 5, points=[[10.0, 20.0], [90.0, 20.0], [50.0, 5.0], [50.0, 40.0]]),
        ],
        3: [
            _p("scribble", 2, points=[[0.0, 0.0], [70.0, 0.0]], width=5.0, positive=False),
            _p("click", 6, x=159.0, y=119.0, positive=True),
        ],
    }
    prompts = prompts_of(objects, ("click", "scribble", "extreme_points"), 0.5, (60, 80))
    assert [type(p) for p in prompts] == [Click, Scribble, ExtremePoints, Click]  # by id; no edit
    click, scribble, extreme, last = prompts
    assert (click.x, click.y, click.positive, click.object_id) == (50.0, 25.0, True, 7)
    assert scribble.points == ((0.0, 0.0), (35.0, 0.0)) and scribble.width == 2.5
    assert not scribble.positive and scribble.object_id == 3
    assert (extreme.left, extreme.right, extreme.top, extreme.bottom) == (
        (5.0, 10.0),
        (45.0, 10.0),
        (25.0, 2.5),
        (25.0, 20.0),
    )
    assert (last.x, last.y) == (79.0, 59.0)  # inside the working image
    assert [type(p) for p in prompts_of(objects, ("click",), 1.0, (120, 160))] == [Click, Click]


def test_every_logged_prompt_kind_has_a_typed_prompt():
    from annotation.labeling.models import METHOD_KINDS
    from inference import PROMPT_KINDS

    assert set(METHOD_KINDS) == set(PROMPT_KINDS)
    payloads = {
        "click": {"x": 1.0, "y": 2.0, "positive": True},
        "box": {"x0": 1.0, "y0": 1.0, "x1": 5.0, "y1": 6.0},
        "scribble": {"points": [[1.0, 1.0]], "width": 3.0, "positive": True},
        "extreme_points": {"points": [[1.0, 3.0], [9.0, 3.0], [5.0, 1.0], [5.0, 7.0]]},
        "text": {"text": "dog"},
    }
    for kind in METHOD_KINDS:
        prompt = typed_prompt(kind, payloads[kind], 4)
        assert prompt.kind == kind and prompt.object_id == 4


def test_edits_paint_then_erase_in_order():
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:20, 10:20] = True
    out = apply_edits(
        mask,
        [
            _p("click", x=1.0, y=1.0, positive=True),
            _p("edit", points=[[30.0, 5.0], [30.0, 35.0]], width=4.0, mode="paint"),
            _p("edit", points=[[15.0, 15.0]], width=5.0, mode="erase"),
        ],
    )
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

    assert state_nbytes(P()) == 4000 + 80 + 5


def test_an_imported_mask_is_a_prior_only_once_the_object_has_a_prompt_the_method_reads():
    from annotation.common import rle
    from annotation.segmentation.interactive.compute import priors_of

    stored = np.zeros((40, 60), bool)
    stored[10:30, 20:50] = True
    base = {"id": 0, "kind": "base", "payload": rle.encode(stored), "method": ""}
    objects = {
        5: [base, _p("click", 3, x=1.0, y=1.0, positive=True)],
        6: [base, _p("edit", 4, points=[[1.0, 1.0]], width=3.0, mode="paint")],  # brush only
        7: [_p("click", 5, x=2.0, y=2.0, positive=True)],  # no stored mask
    }
    priors = priors_of(objects, ("click", "mask"), 0.5, (20, 30))
    assert [p.object_id for p in priors] == [5]
    assert priors[0].mask.shape == (20, 30) and priors[0].mask.sum() == stored.sum() // 4
