"""Prompts: one model for every kind, scaling to a working size, reading them as clicks."""

import numpy as np
import pytest

from inference import (
    PROMPT_KINDS,
    Box,
    Click,
    ExtremePoints,
    MaskResult,
    Predictor,
    Scribble,
    Text,
    clicks_from_prompts,
    prompt_clicks,
)
from inference.structures import SCRIBBLE_CLICKS, points_along


def test_every_kind_is_named_once():
    assert PROMPT_KINDS == ("click", "box", "scribble", "extreme_points", "text")
    assert Click(1, 2).kind == "click" and Text("a cat").kind == "text"


def test_scaled_multiplies_and_clamps_to_the_working_image():
    assert Click(30, 500, positive=False, object_id=4).scaled(0.5, 100, 200) == Click(
        15, 99, False, 4
    )
    assert Box(-4, 10, 900, 20).scaled(0.5, 100, 200) == Box(0, 5, 199, 10)
    s = Scribble(((10.0, 10.0), (1000.0, 30.0)), width=6, positive=False, object_id=2).scaled(
        0.5, 100, 200
    )
    assert (
        s.points == ((5.0, 5.0), (199.0, 15.0))
        and s.width == 3.0
        and not s.positive
        and s.object_id == 2
    )
    assert Scribble(((1.0, 1.0),), width=1).scaled(0.25, 10, 10).width == 1.0  # never under a pixel
    e = ExtremePoints((0, 50), (400, 60), (200, 0), (210, 300), object_id=3).scaled(0.5, 100, 150)
    assert e.points == ((0, 25), (149, 30), (100, 0), (105, 99)) and e.width == 2.5
    assert Text("dog").scaled(0.5, 10, 10) == Text("dog")


def test_extreme_points_from_four_points_in_any_order():
    e = ExtremePoints.from_points([(49, 59), (69, 41), (30, 40), (50, 20)], object_id=2)
    assert (e.left, e.right, e.top, e.bottom, e.object_id) == (
        (30, 40),
        (69, 41),
        (50, 20),
        (49, 59),
        2,
    )
    with pytest.raises(ValueError):
        ExtremePoints.from_points([(1, 1)] * 3)


def test_scribble_background_is_a_negative_not_a_class():
    with pytest.raises(ValueError, match="positive=False"):
        Scribble(((1.0, 1.0),), label=0)


def _along_reference(points, n):
    """annotation/segmentation/compute.py ``_along`` as it was (the port must match it)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 1:
        return [tuple(pts[0])]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return [tuple(pts[0])]
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0, total, min(n, max(2, int(total) + 1)))
    return list(zip(np.interp(at, cum, pts[:, 0]), np.interp(at, cum, pts[:, 1])))


@pytest.mark.parametrize(
    "points",
    [
        [(3, 4)],
        [(3, 4), (3, 4)],
        [(0, 0), (2, 1)],
        [(0, 0), (40, 0), (40, 30)],
        [(5.5, 7.25), (100.0, 80.0), (20.0, 90.0), (0.0, 0.0)],
    ],
)
def test_points_along_is_the_platform_s_reading(points):
    assert points_along(points, SCRIBBLE_CLICKS) == _along_reference(points, SCRIBBLE_CLICKS)


def test_prompts_as_clicks():
    scribble = Scribble(((0.0, 0.0), (70.0, 0.0)), positive=False, object_id=3)
    clicks = prompt_clicks(scribble)
    assert len(clicks) == 8 and all(c == Click(c.x, 0.0, False, 3) for c in clicks)
    assert [c.x for c in clicks] == pytest.approx([10.0 * k for k in range(8)])
    e = ExtremePoints((1, 5), (9, 4), (5, 0), (6, 8), object_id=2)
    assert prompt_clicks(e) == [
        Click(1, 5, True, 2),
        Click(9, 4, True, 2),
        Click(5, 0, True, 2),
        Click(6, 8, True, 2),
    ]
    assert clicks_from_prompts([Click(1, 1), e]) == [Click(1, 1), *prompt_clicks(e)]
    for prompt in (Box(0, 0, 5, 5), Text("cat")):
        with pytest.raises(ValueError, match=prompt.kind):
            prompt_clicks(prompt)


class DiskPredictor(Predictor):
    """A disk of radius 5 around each positive click, minus one around each negative."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _set_image(self, image):
        pass

    def _predict(self, clicks):
        self.calls.append(list(clicks))
        h, w = self.image_size
        yy, xx = np.ogrid[:h, :w]
        mask = np.zeros((h, w), bool)
        for c in clicks:
            mask[(xx - c.x) ** 2 + (yy - c.y) ** 2 <= 25] = c.positive
        return MaskResult(mask=mask)


def test_default_predict_objects_runs_each_object_alone():
    p = DiskPredictor()
    p.set_image(np.zeros((40, 60, 3), np.uint8))
    background = Click(22, 20, positive=False, object_id=0)
    out = p.predict_objects(
        [
            Click(20, 20, object_id=1),
            Click(25, 20, object_id=2),
            background,
            Scribble(((40.0, 30.0), (47.0, 30.0)), object_id=2),
            Click(50, 10, positive=False, object_id=3),
        ]
    )
    assert sorted(out) == [1, 2, 3] and not out[3].mask.any()
    # object 1: its click, then the background click (a negative) in the given order
    assert p.calls[0] == [Click(20, 20, object_id=1), background]
    assert p.calls[1][0] == Click(25, 20, object_id=2) and p.calls[1][1] == background
    assert len(p.calls) == 2  # object 3 has no positive click: no call, an empty mask
    assert (
        out[1].mask[20, 16]
        and not out[1].mask[20, 22]
        and out[2].mask[30, 44]
        and not out[1].mask[30, 44]
    )
    assert p.predict_objects([]) == {}
