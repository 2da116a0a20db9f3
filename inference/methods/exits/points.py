"""Extreme points, boxes and object crops for EXITS (spec B1, B2.1, seed 002).

Coordinates are pixels, x to the right and y down, with pixel ``(x, y)`` covering the square
``[x, x + 1) × [y, y + 1)``. A box is continuous XYXY: an object whose extreme pixels are
``left.x … right.x`` spans ``[left.x, right.x + 1)``.

A :class:`CropWindow` is the expanded box an object crop is cut from; the crop is that window
stretched to ``size × size`` (aspect ratio ignored, as MAL does), with pixels beyond the image
taken from the opposite side (wrap-around fill, B2.1) so no fake colour enters the CRF term.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...structures import ExtremePoints

# The paper's δ per dataset, in pixels of the 512×512 crop (supplement, Sec. B).
DELTA_AT_512 = {"coco": 24.0, "lvis": 16.0, "voc": 12.0}
# MAL's deterministic test margin: 0.3 × half-extent on every side (test_margin_rate 0.6, halved).
TEST_MARGIN = 0.3
# MAL's training margin: U[0, 1.2] × half-extent per axis, split randomly between the two sides.
TRAIN_MARGIN_MAX = 1.2


def extreme_points_from_mask(mask: np.ndarray) -> ExtremePoints:
    """The four extreme points of an H×W bool mask.

    Each point lies on the mask and on its extreme row or column; where the extreme column
    (or row) holds several mask pixels, the middle one of them is taken (what an annotator
    clicking "the leftmost point" of a flat side would do). Raises ValueError on an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("an empty mask has no extreme points")

    def middle(values: np.ndarray) -> float:
        values = np.sort(values)
        return float(values[(len(values) - 1) // 2])

    x_min, x_max, y_min, y_max = xs.min(), xs.max(), ys.min(), ys.max()
    return ExtremePoints(
        left=(float(x_min), middle(ys[xs == x_min])),
        right=(float(x_max), middle(ys[xs == x_max])),
        top=(middle(xs[ys == y_min]), float(y_min)),
        bottom=(middle(xs[ys == y_max]), float(y_max)),
    )


def box_of(points: ExtremePoints) -> tuple[float, float, float, float]:
    """Continuous XYXY box covering the extreme pixels: (left.x, top.y, right.x + 1,
    bottom.y + 1)."""
    x0, y0, x1, y1 = points.box_xyxy
    return (x0, y0, x1 + 1.0, y1 + 1.0)


def points_from_coco(value: object) -> ExtremePoints:
    """Extreme points as stored in a COCO annotation's ``extreme_points`` field: either a dict
    ``{"left": [x, y], "right": …, "top": …, "bottom": …}`` or a list of four ``[x, y]`` in
    ExtremeNet's order (top, left, bottom, right)."""
    if isinstance(value, dict):
        left, right, top, bottom = (
            (float(value[k][0]), float(value[k][1])) for k in ("left", "right", "top", "bottom")
        )
        return ExtremePoints(left=left, right=right, top=top, bottom=bottom)
    if isinstance(value, (list, tuple)) and len(value) == 4:
        top, left, bottom, right = ((float(p[0]), float(p[1])) for p in value)
        return ExtremePoints(left=left, right=right, top=top, bottom=bottom)
    raise ValueError(
        f"extreme_points must be a dict of left/right/top/bottom or a list of four "
        f"[x, y] (top, left, bottom, right), got {value!r}"
    )


def points_to_coco(points: ExtremePoints) -> dict[str, list[float]]:
    """The dict form read by :func:`points_from_coco`."""
    return {
        "left": list(points.left),
        "right": list(points.right),
        "top": list(points.top),
        "bottom": list(points.bottom),
    }


@dataclass(frozen=True)
class CropWindow:
    """The image region ``[x0, x1) × [y0, y1)`` (may pass the border) shown in a ``size``² crop."""

    x0: float
    y0: float
    x1: float
    y1: float
    size: int

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Crop pixels per image pixel along x and y."""
        return self.size / (self.x1 - self.x0), self.size / (self.y1 - self.y0)

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """(K, 2) float image coordinates of pixel centres → crop coordinates (continuous)."""
        sx, sy = self.scale_xy
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.stack([(xy[:, 0] + 0.5 - self.x0) * sx, (xy[:, 1] + 0.5 - self.y0) * sy], axis=1)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """(K, 2) crop coordinates (continuous) → image pixel coordinates (inverse of to_crop)."""
        sx, sy = self.scale_xy
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        return np.stack([uv[:, 0] / sx + self.x0 - 0.5, uv[:, 1] / sy + self.y0 - 0.5], axis=1)

    def box_in_crop(
        self, box: tuple[float, float, float, float]
    ) -> tuple[float, float, float, float]:
        """A continuous XYXY image box in crop coordinates."""
        sx, sy = self.scale_xy
        x0, y0, x1, y1 = box
        return ((x0 - self.x0) * sx, (y0 - self.y0) * sy, (x1 - self.x0) * sx, (y1 - self.y0) * sy)


def crop_window(
    box: tuple[float, float, float, float],
    size: int,
    margins: tuple[float, float, float, float] = (TEST_MARGIN,) * 4,
) -> CropWindow:
    """Window of ``box`` grown by ``margins`` = (left, top, right, bottom) × the half-extent."""
    x0, y0, x1, y1 = box
    half_w, half_h = max(x1 - x0, 1.0) / 2, max(y1 - y0, 1.0) / 2
    ml, mt, mr, mb = margins
    return CropWindow(x0 - ml * half_w, y0 - mt * half_h, x1 + mr * half_w, y1 + mb * half_h, size)


def random_margins(
    rng: np.random.Generator, max_rate: float = TRAIN_MARGIN_MAX
) -> tuple[float, float, float, float]:
    """MAL's training margins: per axis m ~ U[0, max_rate], split g : 1 − g with g ~ U[0, 1]."""
    mx, my = rng.uniform(0, max_rate, size=2)
    gx, gy = rng.uniform(0, 1, size=2)
    return (mx * gx, my * gy, mx * (1 - gx), my * (1 - gy))


def crop_image(image: np.ndarray, window: CropWindow) -> np.ndarray:
    """The window of an H×W×3 uint8 image as a ``size``×``size``×3 uint8 crop (wrap-around fill;
    INTER_AREA to shrink, INTER_LINEAR to enlarge)."""
    height, width = image.shape[:2]
    xs = np.arange(int(np.floor(window.x0)), int(np.ceil(window.x1))) % width
    ys = np.arange(int(np.floor(window.y0)), int(np.ceil(window.y1))) % height
    patch = image[ys[:, None], xs[None, :]]
    shrink = patch.shape[0] >= window.size and patch.shape[1] >= window.size
    flag = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(patch, (window.size, window.size), interpolation=flag)


def box_mask(box_uv: tuple[float, float, float, float], size: int) -> np.ndarray:
    """``size``×``size`` float32 map: 1 at pixels whose centre lies inside the crop-space box."""
    centres = np.arange(size) + 0.5
    x0, y0, x1, y1 = box_uv
    inside_x = (centres >= x0) & (centres <= x1)
    inside_y = (centres >= y0) & (centres <= y1)
    out = (inside_y[:, None] & inside_x[None, :]).astype(np.float32)
    if not out.any():  # a box thinner than one crop pixel: keep its nearest pixel
        cx = min(size - 1, max(0, int((x0 + x1) / 2)))
        cy = min(size - 1, max(0, int((y0 + y1) / 2)))
        out[cy, cx] = 1.0
    return out


def shift_inward(points: ExtremePoints, delta: float) -> np.ndarray:
    """(4, 2) float array of the extreme points (left, right, top, bottom, in that order) moved
    ``delta`` pixels inward along their outward normal, never past the box's centre line.

    Works in any frame whose axes are the image's (e.g. crop coordinates after
    :meth:`CropWindow.to_crop`); pass points already in that frame.
    """
    (lx, ly), (rx, ry), (tx, ty), (bx, by) = points.left, points.right, points.top, points.bottom
    cx, cy = (lx + rx) / 2, (ty + by) / 2
    return np.array(
        [
            [min(lx + delta, max(lx, cx)), ly],
            [max(rx - delta, min(rx, cx)), ry],
            [tx, min(ty + delta, max(ty, cy))],
            [bx, max(by - delta, min(by, cy))],
        ],
        dtype=np.float64,
    )


def points_in_window(points: ExtremePoints, window: CropWindow) -> ExtremePoints:
    """Extreme points mapped into crop coordinates of ``window``."""
    uv = window.to_crop(np.array([points.left, points.right, points.top, points.bottom]))
    return ExtremePoints(
        left=tuple(uv[0]),  # type: ignore[arg-type]
        right=tuple(uv[1]),  # type: ignore[arg-type]
        top=tuple(uv[2]),  # type: ignore[arg-type]
        bottom=tuple(uv[3]),  # type: ignore[arg-type]
    )


def paste_probability(
    prob: np.ndarray,
    window: CropWindow,
    image_hw: tuple[int, int],
    box: tuple[float, float, float, float],
) -> np.ndarray:
    """An (h, w) float32 crop-space probability map back in the image: H×W float32, zero outside
    ``box`` (the box prior). Bilinear sampling at each image pixel centre inside the box."""
    height, width = image_hw
    out = np.zeros((height, width), dtype=np.float32)
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return out
    h, w = prob.shape
    sx, sy = window.scale_xy
    # image pixel centre → crop coordinate → prob-map pixel index (centres at i + 0.5)
    us = ((np.arange(x0, x1) + 0.5 - window.x0) * sx) * (w / window.size) - 0.5
    vs = ((np.arange(y0, y1) + 0.5 - window.y0) * sy) * (h / window.size) - 0.5
    map_x = np.broadcast_to(us[None, :], (y1 - y0, x1 - x0)).astype(np.float32)
    map_y = np.broadcast_to(vs[:, None], (y1 - y0, x1 - x0)).astype(np.float32)
    out[y0:y1, x0:x1] = cv2.remap(
        prob.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out
