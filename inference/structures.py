"""Named prompt and result structures. Coordinates are pixels: x to the right, y down."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Click:
    """One click at pixel (x, y); ``positive`` adds to the object, negative removes."""

    x: float
    y: float
    positive: bool = True

    def check_inside(self, height: int, width: int) -> None:
        if not (0 <= self.x < width and 0 <= self.y < height):
            raise ValueError(f"click ({self.x:g}, {self.y:g}) is outside the {width}×{height} image")


@dataclass(frozen=True)
class Scribble:
    """A polyline of points ``[(x, y), ...]`` painted with ``width`` pixels, for one class."""

    points: tuple[tuple[float, float], ...]
    width: float = 5.0
    label: int = 1  # class index; 0 is background
    instance: int = 0


@dataclass(frozen=True)
class ExtremePoints:
    """The leftmost, rightmost, top and bottom points of one object."""

    left: tuple[float, float]
    right: tuple[float, float]
    top: tuple[float, float]
    bottom: tuple[float, float]

    @property
    def box_xyxy(self) -> tuple[float, float, float, float]:
        return (self.left[0], self.top[1], self.right[0], self.bottom[1])


@dataclass
class MaskResult:
    """A predicted mask.

    ``mask`` is an H×W bool array at the image's size; ``score`` the method's confidence in
    [0, 1] when it has one; ``timings`` seconds per stage (e.g. ``{"predict": 0.03}``).
    """

    mask: np.ndarray
    score: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mask.ndim != 2 or self.mask.dtype != bool:
            raise ValueError(f"mask must be an H×W bool array, got {self.mask.dtype} {self.mask.shape}")
