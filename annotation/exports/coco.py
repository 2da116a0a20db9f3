"""COCO instances export: ``images/<stem>.<ext>`` plus ``annotations/instances_default.json``.

The JSON is named as CVAT names it: Datumaro finds COCO files only by ``<task>_<subset>.json``.

* Categories: ``id`` = 1 + index in the project's label order (``LabelClass.position``, then
  id), so ids are stable across exports as long as the label order is.
* Images: ``id`` = the platform's image id, ``file_name`` = the name under ``images/``,
  ``width``/``height`` as stored (upright, EXIF applied at upload).
* Annotations: ``id`` = the platform's instance id, ``iscrowd`` 0. ``segmentation`` is either
  the stored compressed RLE (``masks="rle"``: the exact mask) or polygons (``masks="polygon"``:
  outer contours traced on a 2× upsampled crop, so the polygon runs along pixel edges rather
  than pixel centres, then simplified by ``cv2.approxPolyDP`` with epsilon ``tolerance``
  pixels; holes are filled, since COCO polygons cannot express them). ``area`` and ``bbox``
  are always recomputed from the segmentation actually written (for polygons: from their
  rasterisation by pycocotools), so they agree with what a reader decodes.
* Empty masks, and polygons that simplify away, are skipped and counted in the result.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from pycocotools import mask as mask_utils

from annotation.common import rle

from .records import (
    Category,
    ExportImage,
    ExportInstance,
    ExportParams,
    ExportStats,
    arcname,
    write_stored,
)


def mask_to_polygons(mask: np.ndarray, tolerance: float) -> list[list[float]]:
    """Outer contours of an ``H×W`` bool mask as COCO polygons ``[[x1, y1, x2, y2, ...], ...]``.

    Coordinates are continuous (pixel ``(x, y)`` covers ``[x, x+1) × [y, y+1)``). Works on the
    mask's bounding crop, upsampled 2× with nearest neighbour: contour points of the upsampled
    grid map to ``(p + 0.5) / 2``, a quarter pixel inside the true pixel edge, which keeps small
    objects intact (tracing pixel centres loses half a pixel all round: IoU ≈ 0.73 on a 3-pixel
    ellipse against ≥ 0.9 this way). Needs OpenCV (``opencv-python-headless``).
    """
    try:
        import cv2
    except ImportError as exc:  # not in the base install: the web image has no `ml` extra
        raise RuntimeError(
            "polygon export needs OpenCV: pip install opencv-python-headless (or export RLE)"
        ) from exc
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return []
    rows = np.flatnonzero(mask.any(axis=1))
    x0, y0 = int(cols[0]), int(rows[0])
    crop = mask[y0 : int(rows[-1]) + 1, x0 : int(cols[-1]) + 1].astype(np.uint8)
    up = crop.repeat(2, axis=0).repeat(2, axis=1)
    # 1 px of padding so that contours touching the crop edge are still closed outlines.
    up = np.pad(up, 1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, 2 * tolerance, True)
        pts = contour.reshape(-1, 2).astype(np.float64) - 1  # undo the padding
        if len(pts) < 3:
            # A one- or two-pixel-wide sliver: fall back to the box of its points.
            xa, ya = pts.min(axis=0)
            xb, yb = pts.max(axis=0) + 1
            pts = np.array([[xa, ya], [xb, ya], [xb, yb], [xa, yb]], dtype=np.float64)
        pts = (pts + 0.5) / 2 + (x0, y0)
        polygons.append([round(float(v), 2) for v in pts.ravel()])
    return polygons


def polygons_area_bbox(
    polygons: list[list[float]], height: int, width: int
) -> tuple[int, list[float]]:
    """Area and ``[x, y, w, h]`` of the polygons as pycocotools rasterises them."""
    merged = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return int(mask_utils.area(merged)), [float(v) for v in mask_utils.toBbox(merged)]


class CocoWriter:
    """Adds images and instances to an open zip; ``finish`` writes ``instances_default.json``.

    The JSON arrays are spooled to temporary files while the images stream into the zip (a
    zip member must be written in one go, and the images come first).
    """

    def __init__(
        self,
        zf: zipfile.ZipFile,
        categories: list[Category],
        params: ExportParams,
        stats: ExportStats,
        scratch: Path,
    ) -> None:
        self.zf, self.categories, self.params, self.stats = zf, categories, params, stats
        # spools that outlive this call: add() appends to them, finish() copies and closes them
        self._images: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", dir=scratch)  # noqa: SIM115
        self._annotations: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", dir=scratch)  # noqa: SIM115
        self._first_image = self._first_annotation = True

    def add(self, image: ExportImage, instances: list[ExportInstance]) -> None:
        file_name = f"{image.stem}.{image.ext}"
        write_stored(self.zf, image, arcname("images", file_name))
        self._append_image(
            {"id": image.id, "file_name": file_name, "width": image.width, "height": image.height}
        )
        for inst in instances:
            ann = self._annotation(image, inst)
            if ann is not None:
                self._append_annotation(ann)
                self.stats.annotations += 1

    def _annotation(self, image: ExportImage, inst: ExportInstance) -> dict[str, Any] | None:
        if list(inst.mask["size"]) != [image.height, image.width]:
            self.stats.skip("size_mismatch", image.id)
            return None
        segmentation: Any
        if self.params.masks == "rle":
            area, bbox = rle.area_and_bbox(inst.mask)
            segmentation = {"size": list(inst.mask["size"]), "counts": inst.mask["counts"]}
        else:
            segmentation = mask_to_polygons(rle.decode(inst.mask), float(self.params.tolerance))
            area, bbox = (
                polygons_area_bbox(segmentation, image.height, image.width)
                if segmentation
                else (0, [])
            )
        if area == 0:
            self.stats.skip("empty_mask", image.id)
            return None
        return {
            "id": inst.id,
            "image_id": image.id,
            "category_id": inst.category.id,
            "segmentation": segmentation,
            "area": area,
            "bbox": bbox,
            "iscrowd": 0,
        }

    def _append_image(self, entry: dict[str, Any]) -> None:
        self._images.write(
            ("" if self._first_image else ",") + json.dumps(entry, separators=(",", ":"))
        )
        self._first_image = False

    def _append_annotation(self, entry: dict[str, Any]) -> None:
        self._annotations.write(
            ("" if self._first_annotation else ",") + json.dumps(entry, separators=(",", ":"))
        )
        self._first_annotation = False

    def finish(self) -> None:
        head = {
            "info": {"description": "exported by Maskwright", "version": "1.0"},
            "licenses": [],
            "categories": [
                {"id": c.id, "name": c.name, "supercategory": ""} for c in self.categories
            ],
        }
        with self.zf.open(
            arcname("annotations", "instances_default.json"), "w", force_zip64=True
        ) as out:
            out.write(json.dumps(head, separators=(",", ":"))[:-1].encode())
            out.write(b',"images":[')
            self._copy(self._images, out)
            out.write(b'],"annotations":[')
            self._copy(self._annotations, out)
            out.write(b"]}")

    @staticmethod
    def _copy(spool: IO[str], out: IO[bytes]) -> None:
        spool.seek(0)
        while block := spool.read(1 << 20):
            out.write(block.encode("utf-8"))
        spool.close()
