"""Image files, COCO masks and IoU: the plain helpers that methods and evaluation both read.

Lives below both (``inference.evaluation`` imports it, never the reverse), so a method's batch
tool can read a COCO json without importing the evaluation harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def read_rgb(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB pixels of an image file (grey and RGBA are converted)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def guess_images_dir(annotations: Path) -> Path:
    """The ``images/`` folder beside a COCO json, or beside its folder."""
    for candidate in (annotations.parent / "images", annotations.parent.parent / "images"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no images/ folder next to {annotations}; pass the images folder")


def rasterize(segmentation: Any, height: int, width: int) -> np.ndarray:
    """H×W bool mask of a COCO segmentation (polygon list, uncompressed or compressed RLE)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles) if rles else None
        if rle is None:
            return np.zeros((height, width), dtype=bool)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(bool)


def paint_largest_first(masks: Sequence[np.ndarray]) -> np.ndarray:
    """H×W int32 instance map of possibly overlapping bool masks.

    Painted in order of decreasing area (ties in the given order), so a small object lying on
    a large one keeps its pixels. Masks left with no pixel are dropped and the survivors are
    numbered 1..N in the given order.
    """
    if not masks:
        raise ValueError("no masks to paint")
    labels = np.zeros(masks[0].shape, dtype=np.int32)
    order = sorted(range(len(masks)), key=lambda k: -int(masks[k].sum()))
    for k in order:
        labels[masks[k]] = k + 1
    survivors = [k + 1 for k in range(len(masks)) if (labels == k + 1).any()]
    lookup = np.zeros(len(masks) + 1, dtype=np.int32)
    lookup[survivors] = np.arange(1, len(survivors) + 1, dtype=np.int32)
    return np.asarray(lookup[labels])


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """|pred ∧ gt| / |pred ∨ gt| over non-ignored pixels (H×W bool arrays); 1.0 if both are
    empty."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if ignore is not None:
        keep = ~ignore.astype(bool)
        pred, gt = pred & keep, gt & keep
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union
