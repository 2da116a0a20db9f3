"""YOLO segmentation export, as Ultralytics reads it.

Layout: ``images/<stem>.<ext>`` (the stored file, byte for byte), ``labels/<stem>.txt`` (one
per image, empty when the image has no object) and ``data.yaml``::

    train: images
    val: images
    nc: 2
    names:
      0: "bird"
      1: "cat"

``data.yaml`` has no ``path`` key on purpose: Ultralytics then takes the folder of the yaml as
the dataset root (a relative ``path`` would be resolved against its own datasets folder).
``train`` and ``val`` name the same images: the export carries no split.

* Class ids: 0-based index in the project's label order (``LabelClass.position``, then id),
  i.e. the COCO category id minus 1.
* One line per instance, ``class x1 y1 x2 y2 ... xn yn``, coordinates continuous (pixel
  ``(x, y)`` covers ``[x, x+1) × [y, y+1)``) divided by the image width and height, clipped to
  ``[0, 1]``, 6 decimals. The outline is :func:`.coco.mask_to_polygons`'s (outer contours on a
  2× grid, simplified by ``tolerance`` pixels; holes filled, as YOLO polygons cannot hold them).
* **Multi-part masks are joined into one polygon**, as Ultralytics' own COCO converter does:
  parts are chained nearest first (by centre, starting from the largest) and each link is a
  zero-width cut walked out and back along the closest pair of points of two consecutive
  parts. Rasterised, the line is the union of all parts (plus those cuts, a pixel wide at most
  where a rasteriser draws them). At most :data:`MAX_PARTS` parts are kept (the largest); the
  masks that lost parts are counted in the result (``parts_dropped``, the mask itself ships).
* A line holds at most :data:`MAX_POINTS` points: an outline with more is simplified again
  with a doubled tolerance until it fits.
* Empty masks, and masks of another size than their image, are skipped and counted.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from annotation.common import rle

from .coco import mask_to_polygons
from .records import (
    Category,
    ExportImage,
    ExportInstance,
    ExportParams,
    ExportStats,
    arcname,
    write_stored,
)

MAX_PARTS = 50
MAX_POINTS = 2000
# tolerance used when the caller's is 0 and the outline is still too long
_MIN_RETRY_TOLERANCE = 0.5


def _ring(flat: list[float]) -> np.ndarray:
    return np.asarray(flat, dtype=np.float64).reshape(-1, 2)


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _closest(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Indices ``(i, j)`` of the closest pair ``a[i]``, ``b[j]`` (both ``N×2``; at most
    ``MAX_POINTS`` each, so the ``N×M`` distance table stays under 32 MB)."""
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return int(i), int(j)


def _chain(parts: list[np.ndarray]) -> list[np.ndarray]:
    """The parts reordered: the largest first, then each time the one whose centre is
    nearest to the last one's."""
    left = sorted(parts, key=_area, reverse=True)
    out = [left.pop(0)]
    while left:
        here = out[-1].mean(axis=0)
        k = min(range(len(left)), key=lambda n: float(((left[n].mean(axis=0) - here) ** 2).sum()))
        out.append(left.pop(k))
    return out


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One closed outline (``N×2``) through every part, in the given order.

    Part ``k`` is entered at ``entry[k]`` (its point closest to part ``k-1``) and left at
    ``exit[k]`` (closest to part ``k+1``). The outline walks, going out, each part from its
    entry to its exit (the first part once round from its exit, the last once round from its
    entry), and coming back, the rest of each middle part from its exit to its entry. Every
    ring is thus walked exactly once and every link twice, in opposite directions."""
    if len(parts) == 1:
        return parts[0]
    links = [_closest(parts[k], parts[k + 1]) for k in range(len(parts) - 1)]
    last = len(parts) - 1
    out: list[np.ndarray] = []
    back: list[np.ndarray] = []
    for k, part in enumerate(parts):
        start = links[k][0] if k == 0 else links[k - 1][1]
        ring = np.roll(part, -start, axis=0)  # begins at the entry (the exit for the first)
        if k in (0, last):
            out.append(np.vstack([ring, ring[:1]]))
        else:
            cut = (links[k][0] - start) % len(part)
            out.append(ring[: cut + 1])  # entry → exit
            back.append(np.vstack([ring[cut:], ring[:1]]))  # exit → round → entry
    return np.vstack(out + back[::-1])


def mask_outline(mask: np.ndarray, tolerance: float) -> tuple[np.ndarray | None, int]:
    """The YOLO outline of an ``H×W`` bool mask in pixels (``N×2``, continuous x, y), or None
    for an empty mask; and how many parts were dropped past :data:`MAX_PARTS`."""
    while True:
        parts = [_ring(p) for p in mask_to_polygons(mask, tolerance)]
        if not parts:
            return None, 0
        dropped = max(0, len(parts) - MAX_PARTS)
        if dropped:
            parts = sorted(parts, key=_area, reverse=True)[:MAX_PARTS]
        if sum(len(p) for p in parts) <= MAX_POINTS:
            return (parts[0] if len(parts) == 1 else join_parts(_chain(parts))), dropped
        tolerance = max(2 * tolerance, _MIN_RETRY_TOLERANCE)


def label_line(class_index: int, outline: np.ndarray, width: int, height: int) -> str:
    """``"class x1 y1 ... xn yn"`` with coordinates normalised to the image, in [0, 1]."""
    norm = np.clip(outline / (width, height), 0.0, 1.0)
    return " ".join([str(class_index), *(f"{v:.6f}" for v in norm.ravel())])


def data_yaml(categories: list[Category]) -> str:
    """``data.yaml``; names are JSON strings, which YAML reads as double-quoted scalars."""
    lines = [
        "# YOLO segmentation dataset exported by Maskwright (Ultralytics layout).",
        "# No 'path' key: the dataset root is this file's folder.",
        "train: images",
        "val: images",
        f"nc: {len(categories)}",
        "names:",
    ]
    lines += [f"  {c.id - 1}: {json.dumps(c.name)}" for c in categories]
    return "\n".join(lines) + "\n"


class YoloWriter:
    """Adds one image and its label file at a time to an open zip; ``finish`` writes
    ``data.yaml``. Nothing is spooled: every file is complete when its image is added."""

    def __init__(
        self,
        zf: zipfile.ZipFile,
        categories: list[Category],
        params: ExportParams,
        stats: ExportStats,
        scratch: Path,
    ) -> None:
        self.zf, self.categories, self.params, self.stats = zf, categories, params, stats

    def add(self, image: ExportImage, instances: list[ExportInstance]) -> None:
        write_stored(self.zf, image, arcname("images", f"{image.stem}.{image.ext}"))
        lines = []
        for inst in instances:
            if list(inst.mask["size"]) != [image.height, image.width]:
                self.stats.skip("size_mismatch", image.id)
                continue
            outline, dropped = mask_outline(rle.decode(inst.mask), float(self.params.tolerance))
            if outline is None:
                self.stats.skip("empty_mask", image.id)
                continue
            if dropped:
                self.stats.parts_dropped += 1
            lines.append(label_line(inst.category.id - 1, outline, image.width, image.height))
            self.stats.annotations += 1
        text = "".join(line + "\n" for line in lines)
        self.zf.writestr(arcname("labels", f"{image.stem}.txt"), text)

    def finish(self) -> None:
        self.zf.writestr(arcname("data.yaml"), data_yaml(self.categories))
