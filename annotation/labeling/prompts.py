"""Validation of prompt payloads (clicks, boxes, scribbles, extreme points, text, brush edits,
candidate choices) against an image's size.

Coordinates are pixels of the stored (upright) image, x to the right and y down, as floats.
"""

from __future__ import annotations

from typing import Any

from annotation.common.exceptions import ApplicationError
from annotation.segmentation.interactive.methods import MAX_CANDIDATES

# Points in one scribble or brush stroke (``protocol.schema.json`` says the same). The page
# thins a longer stroke; every point is rasterised on each replay of the object's prompts.
MAX_SCRIBBLE_POINTS = 2_000
MAX_TEXT_CHARS = 200  # a text prompt names an object ("the red car"), not a paragraph


def _point(value: Any, width: int, height: int, where: str) -> list[float]:
    if isinstance(value, dict):
        value = [value.get("x"), value.get("y")]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ApplicationError(f"{where}: a point is [x, y] or {{'x':, 'y':}} with numbers")
    x, y = float(value[0]), float(value[1])
    if not (0 <= x < width and 0 <= y < height):
        raise ApplicationError(f"{where}: ({x:g}, {y:g}) is outside the {width}×{height} image")
    return [x, y]


def validate_payload(kind: str, payload: Any, width: int, height: int) -> dict[str, Any]:
    """Return the normalised payload, or raise :class:`ApplicationError` saying what is wrong."""
    if not isinstance(payload, dict):
        raise ApplicationError("payload must be an object")
    if kind == "click":
        x, y = _point([payload.get("x"), payload.get("y")], width, height, "click")
        positive = payload.get("positive", True)
        if not isinstance(positive, bool):
            raise ApplicationError("click: 'positive' must be true or false")
        return {"x": x, "y": y, "positive": positive}
    if kind == "box":
        x0, y0 = _point(
            [payload.get("x0"), payload.get("y0")], width, height, "box corner (x0, y0)"
        )
        x1, y1 = _point(
            [payload.get("x1"), payload.get("y1")], width, height, "box corner (x1, y1)"
        )
        if not (x0 < x1 and y0 < y1):
            raise ApplicationError("box: (x0, y0) must be above and left of (x1, y1)")
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
    if kind == "text":
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise ApplicationError(f"text: 'text' must be 1 to {MAX_TEXT_CHARS} characters")
        return {"text": text.strip()}
    if kind == "scribble":
        points = payload.get("points")
        if not isinstance(points, list) or not points:
            raise ApplicationError("scribble: 'points' must be a non-empty list")
        if len(points) > MAX_SCRIBBLE_POINTS:
            raise ApplicationError(f"scribble: more than {MAX_SCRIBBLE_POINTS} points")
        brush = payload.get("width", 5)
        if not isinstance(brush, (int, float)) or not 1 <= brush <= 200:
            raise ApplicationError("scribble: 'width' must be a number of pixels in [1, 200]")
        positive = payload.get("positive", True)
        if not isinstance(positive, bool):
            raise ApplicationError("scribble: 'positive' must be true or false")
        return {
            "points": [
                _point(p, width, height, f"scribble point {i}") for i, p in enumerate(points)
            ],
            "width": float(brush),
            "positive": positive,
        }
    if kind == "extreme_points":
        points = payload.get("points")
        if not isinstance(points, list) or len(points) != 4:
            raise ApplicationError("extreme_points: 'points' must hold exactly four points")
        return {
            "points": [_point(p, width, height, f"extreme point {i}") for i, p in enumerate(points)]
        }
    if kind == "edit":
        points = payload.get("points")
        if not isinstance(points, list) or not points or len(points) > MAX_SCRIBBLE_POINTS:
            raise ApplicationError(
                f"edit: 'points' must be a list of 1 to {MAX_SCRIBBLE_POINTS} points"
            )
        brush = payload.get("width")
        if not isinstance(brush, (int, float)) or isinstance(brush, bool) or not 1 <= brush <= 500:
            raise ApplicationError("edit: 'width' must be a number of pixels in [1, 500]")
        if payload.get("mode") not in ("paint", "erase"):
            raise ApplicationError("edit: 'mode' must be 'paint' or 'erase'")
        return {
            "points": [_point(p, width, height, f"edit point {i}") for i, p in enumerate(points)],
            "width": float(brush),
            "mode": payload["mode"],
        }
    if kind == "candidate":
        # bounded here, before the log or a worker sees it; an index past the answer's own
        # count is clamped by the worker (which alone knows the count)
        index = payload.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_CANDIDATES:
            raise ApplicationError(
                f"candidate: 'index' must be an integer from 0 to {MAX_CANDIDATES - 1}"
            )
        return {"index": index}
    raise ApplicationError(
        f"unknown prompt kind {kind!r}"
        " (click, box, scribble, extreme_points, text, edit, candidate)"
    )
