"""The non-learned baselines EXITS is compared with, and falls back to without a generator.

* :func:`box_fill`: the filled box of the extreme points;
* :func:`grabcut_box`: OpenCV GrabCut initialised with that box (``GC_INIT_WITH_RECT``).
"""

from __future__ import annotations

import cv2
import numpy as np

from ...imaging import NO_RECT


def box_fill(box: tuple[float, float, float, float], image_hw: tuple[int, int]) -> np.ndarray:
    """H×W bool filled box (pixels whose centre is inside the continuous XYXY box)."""
    mask = np.zeros(image_hw, dtype=bool)
    x0, y0, x1, y1 = (round(v) for v in box)
    mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return mask


def grabcut_box(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    *,
    max_side: int = 512,
    iterations: int = 5,
) -> np.ndarray:
    """H×W bool: OpenCV GrabCut initialised with the rectangle ``box``."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    gx, gy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    cx0, cy0 = max(0, int(x0 - gx)), max(0, int(y0 - gy))
    cx1, cy1 = min(width, int(np.ceil(x1 + gx))), min(height, int(np.ceil(y1 + gy)))
    crop = image[cy0:cy1, cx0:cx1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    work = (
        cv2.resize(
            crop,
            (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        if scale < 1
        else np.ascontiguousarray(crop)
    )
    rect = (
        int((x0 - cx0) * scale),
        int((y0 - cy0) * scale),
        max(1, int((x1 - x0) * scale)),
        max(1, int((y1 - y0) * scale)),
    )
    labels = np.zeros(work.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(work, labels, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
        fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    except cv2.error:  # a rectangle too thin for the colour models: fall back to the box
        fg = np.zeros(work.shape[:2], bool)
        fg[rect[1] : rect[1] + rect[3], rect[0] : rect[0] + rect[2]] = True
    if scale < 1:
        fg = (
            cv2.resize(
                fg.astype(np.float32),
                (crop.shape[1], crop.shape[0]),
                interpolation=cv2.INTER_LINEAR,
            )
            >= 0.5
        )
    out = np.zeros((height, width), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return out


def grabcut_refine(
    image: np.ndarray,
    prob: np.ndarray,
    box: tuple[float, float, float, float],
    seeds: list[tuple[float, float]],
    *,
    threshold: float = 0.5,
    max_side: int = 512,
    iterations: int = 3,
) -> np.ndarray:
    """H×W bool: a generator's H×W float32 probability map ``prob`` re-decided at full
    resolution by GrabCut (optional EXITS post-processing, ``ExitsConfig.refine="grabcut"``).

    Trimap on the box grown by 10 %: outside the box definite background; inside it probable
    foreground where ``prob > threshold``, probable background elsewhere; a 2-px disk at each
    extreme point (``seeds``, (x, y) image pixels) definite foreground. The network supplies the
    colour models' initial split, GrabCut snaps the boundary to image edges.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    gx, gy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    cx0, cy0 = max(0, int(x0 - gx)), max(0, int(y0 - gy))
    cx1, cy1 = min(width, int(np.ceil(x1 + gx))), min(height, int(np.ceil(y1 + gy)))
    scale = min(1.0, max_side / max(cy1 - cy0, cx1 - cx0))
    size = (max(1, round((cx1 - cx0) * scale)), max(1, round((cy1 - cy0) * scale)))
    work = cv2.resize(image[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_AREA)
    p = cv2.resize(prob[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_LINEAR)
    trimap = np.full(p.shape, cv2.GC_BGD, np.uint8)
    bx0, by0 = int((x0 - cx0) * scale), int((y0 - cy0) * scale)
    bx1, by1 = int(np.ceil((x1 - cx0) * scale)), int(np.ceil((y1 - cy0) * scale))
    inside = trimap[by0:by1, bx0:bx1]
    inside[:] = np.where(p[by0:by1, bx0:bx1] > threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    for x, y in seeds:
        cv2.circle(
            trimap,
            (int((x + 0.5 - cx0) * scale), int((y + 0.5 - cy0) * scale)),
            2,
            int(cv2.GC_FGD),
            -1,
        )
    outside = np.ones(trimap.shape, bool)
    outside[by0:by1, bx0:bx1] = False
    trimap[outside] = cv2.GC_BGD  # the seed disks must not leave the box either
    foreground = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if foreground.all() or not np.isin(trimap, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        fg = foreground
    else:
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        try:
            cv2.grabCut(work, trimap, NO_RECT, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # too few pixels of one class for its colour model: keep the network's
            pass
        fg = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if scale < 1:
        fg = (
            cv2.resize(
                fg.astype(np.float32), (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_LINEAR
            )
            >= 0.5
        )
    out = np.zeros((height, width), bool)
    out[cy0:cy1, cx0:cx1] = fg
    return out
