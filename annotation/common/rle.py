"""Masks as COCO RLE, through pycocotools. Framework-free: plain dicts and numpy in and out.

Stored form: ``{"size": [h, w], "counts": "<compressed string>"}`` (what ``mask.encode`` writes,
with ``counts`` decoded to ``str`` so it fits in JSON).

pycocotools trusts its input: it sizes buffers from coordinates and run lengths without checks,
computes pixel offsets in 32-bit ints and reads a counts string until it sees a terminator. A
polygon vertex at 4e8 made it allocate gigabytes and segfault the web process; a counts string
whose runs overrun the image made ``decode`` write past its buffer. So every segmentation that
comes from outside is checked here, in Python and numpy, before any native call
(:func:`check_segmentation`), and what reaches pycocotools is bounded in size and shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

# pycocotools keeps pixel offsets (x * h + y) in C ints: beyond this they overflow. It also
# rasterises polygons at 5× in C ints, which bounds a side.
MAX_PIXELS = 2**31 - 1
MAX_SIDE = 2**28
MAX_POLYGONS = 1_000  # per segmentation
MAX_VERTICES = 100_000  # over all polygons of one segmentation
# Rasterising a polygon allocates ~100 bytes per pixel of outline (5× upsampled boundary
# points, four int arrays): a million pixels of outline is ~100 MB, and no real object needs more.
MAX_OUTLINE = 1_000_000
# Runs of one RLE mask. A real object's outline crosses each column a few times: a disk of
# radius 4000 on a 10000×10000 image has 16,000 runs; 1 % speckle over that whole image has
# 2,000,000 (2.8 MB of counts; cropping it from its runs takes 0.11 s, measured). The polygon
# bound above yields about as many at most. Without it, a counts string may be 2·h·w chars
# (200 MB on 10000×10000), and the annotation socket sends each mask as one message.
MAX_RUNS = 2_000_000
# A vertex may lie this far outside the image: tools write the far pixel edge (x = width) or
# half-pixel corners. Farther out, the polygon was drawn for another image (or is hostile);
# clipping it would silently store a mask different from the one sent, so it is refused.
COORD_MARGIN = 1.0
# Characters of a compressed counts string (pycocotools' alphabet is '0'..'o').
_FIRST_CHAR, _LAST_CHAR = 48, 111


class MaskFormatError(ValueError):
    """A segmentation that cannot be turned into a mask of the expected size."""


def _as_json_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _as_coco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


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


def ious(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> np.ndarray:
    """Intersection over union of every stored mask of ``a`` with every one of ``b`` (all of
    one image's size), computed on the runs: ``len(a) × len(b)`` float64, 0 where both are
    empty."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    found = mask_utils.iou([_as_coco_rle(r) for r in a], [_as_coco_rle(r) for r in b], [0] * len(b))
    return np.asarray(found, dtype=np.float64).reshape(len(a), len(b))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_image_size(height: Any, width: Any, max_pixels: int) -> None:
    if not (_is_int(height) and _is_int(width)) or height <= 0 or width <= 0:
        raise MaskFormatError(f"image size must be positive integers, got {height!r}×{width!r}")
    limit = min(max_pixels, MAX_PIXELS)
    if height * width > limit:
        raise MaskFormatError(
            f"{height}×{width} = {height * width:,} pixels exceeds the limit of {limit:,}"
        )
    if max(height, width) > MAX_SIDE:
        raise MaskFormatError(f"{height}×{width}: a side longer than {MAX_SIDE:,} pixels")


def compressed_runs(counts: str, height: int, width: int) -> np.ndarray:
    """The run lengths of a compressed counts string, checked against an ``height × width``
    image, without decoding a pixel. Raises :class:`MaskFormatError` for anything pycocotools
    would misread.

    The format (pycocotools ``rleToString``): each run is a signed number in 5-bit groups,
    low first, one character per group (``chr(48 + group)``, bit 0x20 = another group
    follows, bit 0x10 of the last group = negative); from the fourth run on, the number is the
    difference to the run two places before.
    """
    if not counts.isascii():
        raise MaskFormatError("compressed RLE counts must be ASCII")
    pixels = height * width
    # Every run covers at least one pixel in what pycocotools writes and takes one or two
    # characters per pixel at worst; far longer strings are padding, not masks.
    if not counts or len(counts) > 2 * pixels + 16:
        raise MaskFormatError(
            f"compressed RLE counts of {len(counts)} characters for {pixels} pixels"
        )
    c = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64)
    if c.min() < _FIRST_CHAR or c.max() > _LAST_CHAR:
        raise MaskFormatError("compressed RLE counts has characters outside '0'..'o'")
    c -= _FIRST_CHAR
    more = (c & 0x20) != 0
    if more[-1]:
        raise MaskFormatError("compressed RLE counts ends in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    digits = ends - starts + 1
    if digits.max() > 7:  # 7 groups hold 35 bits; a 32-bit run never needs more
        raise MaskFormatError("compressed RLE counts has a number too large")
    shift = 5 * (np.arange(c.size) - np.repeat(starts, digits))
    values = np.add.reduceat((c & 0x1F) << shift, starts)
    negative = (c[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * digits)), values)
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])  # run 3 adds to run 1, run 5 to run 3, ...
    runs[2::2] = np.cumsum(values[2::2])  # run 4 adds to run 2 (run 0 stands alone)
    if (runs < 0).any():
        raise MaskFormatError("compressed RLE has a negative run length")
    if int(runs.sum()) != pixels:
        raise MaskFormatError(
            f"compressed RLE covers {int(runs.sum())} pixels, the image has {pixels}"
        )
    return runs


def _check_polygons(segmentation: list[Any], height: int, width: int) -> list[list[float]]:
    polygons = [p for p in segmentation if p]
    if not polygons:
        raise MaskFormatError("empty polygon list")
    if len(polygons) > MAX_POLYGONS:
        raise MaskFormatError(f"{len(polygons)} polygons; the limit is {MAX_POLYGONS}")
    vertices = 0
    outline = 0.0
    for poly in polygons:
        if not isinstance(poly, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly
        ):
            raise MaskFormatError("a polygon must be a flat list of numbers")
        if len(poly) < 6 or len(poly) % 2:
            raise MaskFormatError(
                f"a polygon needs an even number (≥ 6) of coordinates, got {len(poly)}"
            )
        vertices += len(poly) // 2
        if vertices > MAX_VERTICES:
            raise MaskFormatError(f"more than {MAX_VERTICES} polygon vertices")
        try:
            xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        except OverflowError:
            raise MaskFormatError("a polygon coordinate is too large") from None
        if not np.isfinite(xy).all():
            raise MaskFormatError("polygon coordinates must be finite numbers")
        m = COORD_MARGIN
        x, y = xy[:, 0], xy[:, 1]
        if x.min() < -m or x.max() > width + m or y.min() < -m or y.max() > height + m:
            raise MaskFormatError(
                f"a polygon vertex lies outside the image ({width}×{height}, margin {m:g} px)"
            )
        edges = np.abs(np.diff(np.vstack([xy, xy[:1]]), axis=0)).max(axis=1)
        outline += float(edges.sum())
        if outline > MAX_OUTLINE:
            raise MaskFormatError(f"the polygons' outline is longer than {MAX_OUTLINE:,} pixels")
    return polygons


def check_segmentation(
    segmentation: Any, height: int, width: int, *, max_pixels: int = MAX_PIXELS
) -> None:
    """Raise :class:`MaskFormatError` unless ``segmentation`` is a well-formed COCO
    segmentation of an ``height × width`` image that pycocotools can safely read.

    Cheap (Python and numpy, proportional to the segmentation's own size, never to the
    image's): an import checks every annotation with it before converting any.
    """
    _check_image_size(height, width, max_pixels)
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise MaskFormatError("an RLE needs 'size' and 'counts'")
        size = segmentation["size"]
        if not isinstance(size, Sequence) or len(size) != 2 or not all(_is_int(v) for v in size):
            raise MaskFormatError(f"RLE size must be [height, width], got {size!r}")
        if list(size) != [height, width]:
            raise MaskFormatError(
                f"RLE size {list(size)} does not match the image ({height}×{width})"
            )
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if len(counts) > MAX_RUNS:
                raise MaskFormatError(
                    f"RLE with more than {MAX_RUNS:,} runs, the most a mask may have"
                    " (a real object's has far fewer)"
                )
            if len(counts) > height * width + 1:
                raise MaskFormatError(
                    f"uncompressed RLE has {len(counts)} runs for {height * width} pixels"
                )
            if not all(_is_int(c) and c >= 0 for c in counts):
                raise MaskFormatError("uncompressed RLE counts must be non-negative integers")
            if sum(counts) != height * width:
                raise MaskFormatError(
                    f"uncompressed RLE covers {sum(counts)} pixels, the image has {height * width}"
                )
        elif isinstance(counts, str):
            # a run takes at most 7 characters: refuse what surely has too many before reading it
            if len(counts) > 7 * MAX_RUNS or compressed_runs(counts, height, width).size > MAX_RUNS:
                raise MaskFormatError(
                    f"RLE with more than {MAX_RUNS:,} runs, the most a mask may have"
                    " (a real object's has far fewer)"
                )
        else:
            raise MaskFormatError("RLE counts must be a string or a list of integers")
        return
    if isinstance(segmentation, list):
        _check_polygons(segmentation, height, width)
        return
    raise MaskFormatError(f"unknown segmentation type {type(segmentation).__name__}")


def from_segmentation(
    segmentation: Any, height: int, width: int, *, max_pixels: int = MAX_PIXELS
) -> dict[str, Any]:
    """Turn any COCO segmentation into stored RLE of size ``height × width``.

    Accepts polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists), compressed RLE (``counts``
    a string) and uncompressed RLE (``counts`` a list of run lengths). Raises
    :class:`MaskFormatError` with the reason when the input is malformed, of another size, or
    beyond the bounds above; pycocotools only ever sees checked input, and no pixel array of
    the image's size is made.
    """
    check_segmentation(segmentation, height, width, max_pixels=max_pixels)
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, str):
            return {"size": [height, width], "counts": counts}
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        return _as_json_rle(rle)
    polygons = [[float(v) for v in p] for p in segmentation if p]
    return _as_json_rle(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))


def crop(mask: np.ndarray) -> tuple[list[int] | None, dict[str, Any] | None]:
    """The mask's tight box ``[x, y, w, h]`` (ints) and the RLE of that crop; ``(None, None)``
    when empty. What the annotation socket sends: a crop costs bytes in proportion to the
    object, not to the image."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None, None
    rows = np.flatnonzero(mask[:, cols[0] : cols[-1] + 1].any(axis=1))
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    return [x0, y0, x1 - x0, y1 - y0], encode(mask[y0:y1, x0:x1])


def _box_of_runs(runs: np.ndarray, height: int) -> list[int] | None:
    """The tight box ``[x, y, w, h]`` of column-major ``runs`` (zeros first), or ``None``."""
    ends = np.cumsum(runs)
    on = np.flatnonzero(runs[1::2]) * 2 + 1
    if on.size == 0:
        return None
    first, last = ends[on] - runs[on], ends[on] - 1  # pixel offsets, x * height + y
    x0, x1 = int(first[0] // height), int(last[-1] // height) + 1
    if (first // height != last // height).any():  # a run over a column end spans every row
        y0, y1 = 0, height
    else:
        y0, y1 = int((first % height).min()), int((last % height).max()) + 1
    return [x0, y0, x1 - x0, y1 - y0]


def _crop_runs(runs: np.ndarray, height: int, box: list[int]) -> np.ndarray:
    """The runs of the ``box`` crop of a column-major mask, from its runs alone: the crop's
    value changes where an image run ends inside the box, or at a crop column's first pixel.
    Work and memory in proportion to the runs and the box's width, never to its pixels."""
    x0, y0, w, h = box
    bounds = np.cumsum(runs)[:-1]  # the value after bounds[i] is (i + 1) % 2
    after = (np.arange(bounds.size) + 1) % 2
    last = np.append(bounds[1:] != bounds[:-1], True)  # a zero-length run: the later bound counts
    col, row = np.divmod(bounds, height)
    inside = last & (col >= x0) & (col < x0 + w) & (row > y0) & (row < y0 + h)
    col_starts = np.arange(x0, x0 + w, dtype=np.int64) * height + y0
    pos = np.concatenate(
        [np.arange(w, dtype=np.int64) * h, (col[inside] - x0) * h + row[inside] - y0]
    )
    val = np.concatenate([np.searchsorted(bounds, col_starts, side="right") % 2, after[inside]])
    order = np.argsort(pos, kind="stable")
    pos, val = pos[order], val[order]
    flips = val != np.concatenate(([0], val[:-1]))
    return np.diff(np.concatenate(([0], pos[flips], [w * h])))


def crop_stored(rle: dict[str, Any]) -> tuple[list[int] | None, dict[str, Any] | None]:
    """:func:`crop` of a stored full-image RLE, without decoding it: a decode costs time and
    memory in proportion to the image (0.3 s and 200 MB for 10000×10000, measured), and the
    annotation socket crops every object of an image when it opens. From the runs it takes
    ~10 ms for a noisy 10000×10000 mask. A box of the whole image is the stored mask itself."""
    height, width = int(rle["size"][0]), int(rle["size"][1])
    counts = rle["counts"]
    if not isinstance(counts, str):  # never stored so; kept for safety
        return crop(decode(rle))
    runs = compressed_runs(counts, height, width)
    box = _box_of_runs(runs, height)
    if box is None:
        return None, None
    if box == [0, 0, width, height]:
        return box, {"size": [height, width], "counts": counts}
    runs = _crop_runs(runs, height, box)
    size = [box[3], box[2]]
    return box, _as_json_rle(
        mask_utils.frPyObjects({"size": size, "counts": runs.astype(np.uint64)}, *size)
    )
