"""Named prompt and result structures. Coordinates are pixels: x to the right, y down.

Every prompt belongs to an object: ``object_id`` k ≥ 1 is object k of the image, 0 a
background prompt that belongs to no object (a negative for all of them). ``positive`` says
whether a click or scribble adds to its object or removes from it.

Prompts are frozen dataclasses; ``scaled(factor, height, width)`` gives the copy a method reads
at its working size (the platform runs methods on images bounded in size).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

Point = tuple[float, float]  # (x, y)
SCRIBBLE_CLICKS = 8  # points a click-based method reads along a scribble


def _clamp(x: float, y: float, factor: float, height: int, width: int) -> Point:
    """(x, y) times ``factor``, clamped to the pixel centres' range [0, width−1] × [0, height−1]."""
    return (min(width - 1.0, max(0.0, x * factor)), min(height - 1.0, max(0.0, y * factor)))


@dataclass(frozen=True)
class Click:
    """One click at pixel (x, y); ``positive`` adds to the object, negative removes."""

    kind: ClassVar[str] = "click"
    x: float
    y: float
    positive: bool = True
    object_id: int = 1

    def check_inside(self, height: int, width: int) -> None:
        if not (0 <= self.x < width and 0 <= self.y < height):
            raise ValueError(
                f"click ({self.x:g}, {self.y:g}) is outside the {width}×{height} image"
            )

    def scaled(self, factor: float, height: int, width: int) -> Click:
        x, y = _clamp(self.x, self.y, factor, height, width)
        return replace(self, x=x, y=y)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box around one object: corners (x0, y0) top left, (x1, y1) bottom right."""

    kind: ClassVar[str] = "box"
    x0: float
    y0: float
    x1: float
    y1: float
    object_id: int = 1

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def scaled(self, factor: float, height: int, width: int) -> Box:
        x0, y0 = _clamp(self.x0, self.y0, factor, height, width)
        x1, y1 = _clamp(self.x1, self.y1, factor, height, width)
        return replace(self, x0=x0, y0=y0, x1=x1, y1=y1)


@dataclass(frozen=True)
class Scribble:
    """A polyline of points ``[(x, y), ...]`` painted ``width`` pixels wide.

    ``positive`` False marks background (for SALT: class 0). ``label`` is SALT's class index
    (≥ 1) in its full label-map API (:meth:`SALTPredictor.segment`); other methods ignore it.
    """

    kind: ClassVar[str] = "scribble"
    points: tuple[Point, ...]
    width: float = 5.0
    positive: bool = True
    object_id: int = 1
    label: int = 1

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a scribble needs at least one point")
        if self.label < 1:
            raise ValueError(f"label must be ≥ 1 (background is positive=False), got {self.label}")

    def scaled(self, factor: float, height: int, width: int) -> Scribble:
        points = tuple(_clamp(x, y, factor, height, width) for x, y in self.points)
        return replace(self, points=points, width=max(1.0, self.width * factor))


@dataclass(frozen=True)
class ExtremePoints:
    """The leftmost, rightmost, top and bottom points (x, y) of one object.

    ``width``: the brush, in pixels, of a method that paints the points as one stroke (SALT).
    """

    kind: ClassVar[str] = "extreme_points"
    left: Point
    right: Point
    top: Point
    bottom: Point
    object_id: int = 1
    width: float = 5.0

    @property
    def box_xyxy(self) -> tuple[float, float, float, float]:
        return (self.left[0], self.top[1], self.right[0], self.bottom[1])

    @property
    def points(self) -> tuple[Point, Point, Point, Point]:
        """(left, right, top, bottom)."""
        return (self.left, self.right, self.top, self.bottom)

    @classmethod
    def from_points(
        cls, points: Sequence[Point], object_id: int = 1, width: float = 5.0
    ) -> ExtremePoints:
        """Four points (x, y) in any order, named by position: the leftmost is ``left``, the
        rightmost ``right``; of the other two the upper is ``top`` (annotators click in any
        order). Ties keep the given order."""
        if len(points) != 4:
            raise ValueError(f"extreme points are four points, got {len(points)}")
        by_x = sorted(points, key=lambda p: p[0])
        top, bottom = sorted(by_x[1:3], key=lambda p: p[1])
        return cls(
            left=tuple(by_x[0]),  # type: ignore[arg-type]
            right=tuple(by_x[-1]),  # type: ignore[arg-type]
            top=tuple(top),  # type: ignore[arg-type]
            bottom=tuple(bottom),  # type: ignore[arg-type]
            object_id=object_id,
            width=width,
        )

    def scaled(self, factor: float, height: int, width: int) -> ExtremePoints:
        left, right, top, bottom = (_clamp(x, y, factor, height, width) for x, y in self.points)
        return replace(
            self,
            left=left,
            right=right,
            top=top,
            bottom=bottom,
            width=max(1.0, self.width * factor),
        )


@dataclass(frozen=True)
class Text:
    """A text description of one object (no method reads it yet)."""

    kind: ClassVar[str] = "text"
    text: str
    object_id: int = 1

    def scaled(self, factor: float, height: int, width: int) -> Text:
        return self


@dataclass(frozen=True, eq=False)
class PriorMask:
    """The object's mask before these prompts (an import, a pseudo label, earlier work), for a
    method that refines a mask instead of starting from nothing (``MethodInfo.prompts`` lists
    :data:`PRIOR_KIND`). ``mask``: H×W bool at the image's size. Not a kind an annotator logs:
    the platform passes the object's stored mask."""

    kind: ClassVar[str] = "mask"
    mask: np.ndarray
    object_id: int = 1

    def __post_init__(self) -> None:
        if self.mask.ndim != 2:
            raise ValueError(f"a prior mask must be H×W, got shape {self.mask.shape}")

    def scaled(self, factor: float, height: int, width: int) -> PriorMask:
        if self.mask.shape == (height, width):
            return self
        from PIL import Image

        small = Image.fromarray(self.mask.astype(np.uint8)).resize(
            (width, height), Image.Resampling.NEAREST
        )
        return replace(self, mask=np.asarray(small, dtype=bool))


Prompt = Click | Box | Scribble | ExtremePoints | Text | PriorMask
# the kinds an annotator logs; a method that refines prior masks lists PRIOR_KIND beside them
PROMPT_KINDS: tuple[str, ...] = tuple(c.kind for c in (Click, Box, Scribble, ExtremePoints, Text))
PRIOR_KIND = PriorMask.kind


def points_along(points: Sequence[Point], n: int) -> list[Point]:
    """``n`` points evenly spaced by arc length along a polyline (its ends included); fewer on
    a short one (one per pixel of length, at least two), one on a point."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 1:
        return [(float(pts[0, 0]), float(pts[0, 1]))]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return [(float(pts[0, 0]), float(pts[0, 1]))]
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0, total, min(n, max(2, int(total) + 1)))
    return list(zip(np.interp(at, cum, pts[:, 0]).tolist(), np.interp(at, cum, pts[:, 1]).tolist()))


def prompt_clicks(prompt: Prompt) -> list[Click]:
    """The clicks a click-only method reads for one prompt, with its object id and sign.

    A click is itself; a scribble is :data:`SCRIBBLE_CLICKS` points evenly spaced along it;
    extreme points are four positive clicks (left, right, top, bottom). Boxes, text and prior
    masks have no click reading: ValueError naming the kind.
    """
    if isinstance(prompt, Click):
        return [prompt]
    if isinstance(prompt, Scribble):
        return [
            Click(x=x, y=y, positive=prompt.positive, object_id=prompt.object_id)
            for x, y in points_along(prompt.points, SCRIBBLE_CLICKS)
        ]
    if isinstance(prompt, ExtremePoints):
        return [
            Click(x=x, y=y, positive=True, object_id=prompt.object_id) for x, y in prompt.points
        ]
    raise ValueError(f"a {prompt.kind!r} prompt cannot be read as clicks")


def clicks_from_prompts(prompts: Iterable[Prompt]) -> list[Click]:
    """:func:`prompt_clicks` of every prompt, in order."""
    return [click for prompt in prompts for click in prompt_clicks(prompt)]


@dataclass
class MaskResult:
    """A predicted mask.

    ``mask`` is an H×W bool array at the image's size; ``score`` the method's confidence in
    [0, 1] when it has one; ``timings`` seconds per stage (e.g. ``{"predict": 0.03}``);
    ``candidates`` ranked alternatives, best first (each a MaskResult; may be empty).
    """

    mask: np.ndarray
    score: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    candidates: list[MaskResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mask.ndim != 2 or self.mask.dtype != bool:
            raise ValueError(
                f"mask must be an H×W bool array, got {self.mask.dtype} {self.mask.shape}"
            )
