"""Masks as COCO RLE, through pycocotools. Framework-free: plain dicts and numpy in and out.

Stored form: ``{"size": [h, w], "counts": "<compressed string>"}`` (what ``mask.encode`` writes,
with ``counts`` decoded to ``str`` so it fits in JSON).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class MaskFormatError(ValueError):
    """A segmentation that cannot be turned into a mask of the expected size."""


def _as_json_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _as_coco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode an ``H×W`` bool/uint8 mask as stored RLE."""
    if mask.ndim != 2:
        raise MaskFormatError(f"a mask must be 2-D, got shape {mask.shape}")
    return _as_json_rle(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode stored RLE to an ``H×W`` bool array."""
    return mask_utils.decode(_as_coco_rle(rle)).astype(bool)


def area_and_bbox(rle: dict[str, Any]) -> tuple[int, list[float]]:
    """Pixel count and ``[x, y, w, h]`` of the mask (an empty mask has ``[0, 0, 0, 0]``)."""
    coco = _as_coco_rle(rle)
    return int(mask_utils.area(coco)), [float(v) for v in mask_utils.toBbox(coco)]


def from_segmentation(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Turn any COCO segmentation into stored RLE of size ``height × width``.

    Accepts polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists), compressed RLE (``counts``
    a string) and uncompressed RLE (``counts`` a list of run lengths). Raises
    :class:`MaskFormatError` with the reason when the input is malformed or of another size.
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise MaskFormatError("an RLE needs 'size' and 'counts'")
        size = segmentation["size"]
        if (
            not isinstance(size, Sequence)
            or len(size) != 2
            or not all(isinstance(v, int) for v in size)
        ):
            raise MaskFormatError(f"RLE size must be [height, width], got {size!r}")
        if list(size) != [height, width]:
            raise MaskFormatError(f"RLE size {list(size)} does not match the image ({height}×{width})")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts):
                raise MaskFormatError("uncompressed RLE counts must be non-negative integers")
            if sum(counts) != height * width:
                raise MaskFormatError(
                    f"uncompressed RLE covers {sum(counts)} pixels, the image has {height * width}"
                )
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        elif isinstance(counts, str):
            rle = {"size": [height, width], "counts": counts.encode("ascii")}
            try:
                # Decoding validates the string; a corrupt one yields the wrong pixel count.
                decoded = mask_utils.decode(rle)
            except Exception as exc:  # pycocotools raises bare exceptions on garbage
                raise MaskFormatError(f"corrupt compressed RLE: {exc}") from exc
            if decoded.shape != (height, width):
                raise MaskFormatError("corrupt compressed RLE")
        else:
            raise MaskFormatError("RLE counts must be a string or a list of integers")
        return _as_json_rle(rle)
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if p]
        if not polygons:
            raise MaskFormatError("empty polygon list")
        for poly in polygons:
            if not isinstance(poly, list) or not all(isinstance(v, (int, float)) for v in poly):
                raise MaskFormatError("a polygon must be a flat list of numbers")
            if len(poly) < 6 or len(poly) % 2:
                raise MaskFormatError(
                    f"a polygon needs an even number (≥ 6) of coordinates, got {len(poly)}"
                )
        rles = mask_utils.frPyObjects(polygons, height, width)
        return _as_json_rle(mask_utils.merge(rles))
    raise MaskFormatError(f"unknown segmentation type {type(segmentation).__name__}")


def crop(mask: np.ndarray) -> tuple[list[int] | None, dict[str, Any] | None]:
    """The mask's tight box ``[x, y, w, h]`` (ints) and the RLE of that crop; ``(None, None)``
    when empty. What the annotation socket sends: a crop costs bytes in proportion to the
    object, not to the image."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None, None
    rows = np.flatnonzero(mask[:, cols[0]:cols[-1] + 1].any(axis=1))
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    return [x0, y0, x1 - x0, y1 - y0], encode(mask[y0:y1, x0:x1])


def crop_stored(rle: dict[str, Any]) -> tuple[list[int] | None, dict[str, Any] | None]:
    """:func:`crop` of a stored full-image RLE."""
    return crop(decode(rle))
