"""Pascal VOC export: segmentation (class and object PNGs) and detection (boxes) in one tree.

Layout (VOC2012's): ``JPEGImages/<stem>.jpg``, ``SegmentationClass/<stem>.png``,
``SegmentationObject/<stem>.png``, ``Annotations/<stem>.xml`` (objects with boxes),
``ImageSets/Segmentation/train.txt`` and ``ImageSets/Main/train.txt`` (the same list, one stem
a line, every image once: one image set, ``train``, the VOC devkit's default training set) and
``labelmap.txt`` (``name:r,g,b::``, the colours being the palette entries of the class ids).
Datumaro reads the tree as ``voc``, ``voc_detection``, ``voc_segmentation`` and
``voc_instance_segmentation`` alike, one item per image. No per-class
``ImageSets/Main/<class>_train.txt`` lists are written (VOC's classification task).

* Class ids: 0 background, then 1 + index in the project's label order (``LabelClass.position``,
  then id). Object ids: 1, 2, ... per image, in paint order; object ``k`` of the XML is index
  ``k`` of ``SegmentationObject`` (as in VOC).
* **Overlaps: later z-order wins.** Instances are painted in ascending ``(z_order, id)``, each
  over the ones before, so a pixel belongs to the instance with the highest ``z_order`` (the
  highest id among equals) whose mask covers it. An instance left with no visible pixel keeps
  its object id and XML entry.
* Void: with ``void_border = k > 0``, every pixel within Chebyshev distance ``k`` of a pixel of
  another object (or of background) is set to 255 in both PNGs, as VOC marks object borders.
  Image edges are not borders.
* PNGs are palette (``P``) images with the standard VOC colour map (index 255 = (224, 224, 192)).
* Boxes are the tight box of each instance's whole mask, VOC style: 1-based, inclusive
  (``xmin = x + 1``, ``xmax = x + w``); ``truncated`` and ``difficult`` are 0.
* ``JPEGImages``: a stored JPEG is copied byte for byte; other formats are converted (RGB,
  quality 95).
* At most 254 objects per image (255 is void); further instances are skipped and counted,
  and so are empty masks (no pixel, no box).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

import numpy as np
from django.conf import settings
from PIL import Image as PILImage

from annotation.common import media, rle

from .records import (
    Category,
    ExportImage,
    ExportInstance,
    ExportParams,
    ExportStats,
    arcname,
    write_stored,
)

VOID = 255
MAX_OBJECTS = 254


def voc_palette() -> np.ndarray:
    """The standard VOC colour map: ``256×3`` uint8, index → (r, g, b)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


PALETTE = voc_palette()
_PALETTE_BYTES = PALETTE.tobytes()


def paint(
    instances: list[ExportInstance], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class and object maps (``H×W`` uint8 each) of instances given in paint order."""
    classes = np.zeros((height, width), dtype=np.uint8)
    objects = np.zeros((height, width), dtype=np.uint8)
    for k, inst in enumerate(instances, start=1):
        mask = rle.decode(inst.mask)
        classes[mask] = inst.category.id
        objects[mask] = k
    return classes, objects


def void_band(objects: np.ndarray, width: int) -> np.ndarray:
    """``H×W`` bool: pixels within Chebyshev distance ``width`` of a pixel of another object.

    Pixels with a differing 8-neighbour are at distance 1; growing that set by ``width - 1``
    3×3 dilations gives every pixel at distance ≤ ``width``. Plain numpy: no SciPy/OpenCV needed.
    """
    h, w = objects.shape
    band = np.zeros((h, w), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
                xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
                band[yd, xd] |= objects[yd, xd] != objects[ys, xs]
    for _ in range(width - 1):
        grown = band.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
                xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
                grown[yd, xd] |= band[ys, xs]
        band = grown
    return band


def png_bytes(index_map: np.ndarray) -> bytes:
    img = PILImage.fromarray(index_map)  # mode "L"; putpalette turns it into "P"
    img.putpalette(_PALETTE_BYTES)
    out = io.BytesIO()
    # compress_level 1: the maps are mostly flat runs, level 1 is ~5× faster and barely bigger.
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


# the image sets written, under ImageSets/<task>/
IMAGE_SET = "train"
IMAGE_SET_TASKS = ("Main", "Segmentation")


def annotation_xml(
    image: ExportImage, instances: list[ExportInstance], boxes: list[list[float]]
) -> bytes:
    """The VOC XML of one image: ``boxes[k]`` is ``[x, y, w, h]`` of ``instances[k]``."""
    objects = []
    for inst, (x, y, w, h) in zip(instances, boxes, strict=True):
        objects.append(
            "<object>"
            f"<name>{escape(inst.category.name)}</name><pose>Unspecified</pose>"
            "<truncated>0</truncated><difficult>0</difficult><occluded>0</occluded>"
            f"<bndbox><xmin>{int(x) + 1}</xmin><ymin>{int(y) + 1}</ymin>"
            f"<xmax>{int(x + w)}</xmax><ymax>{int(y + h)}</ymax></bndbox>"
            "</object>"
        )
    return (
        "<annotation><folder>VOC</folder>"
        f"<filename>{escape(image.stem)}.jpg</filename>"
        "<source><database>Maskwright</database></source>"
        f"<size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>"
        f"<segmented>1</segmented>{''.join(objects)}</annotation>\n"
    ).encode()


class VocWriter:
    """Adds one image at a time to an open zip; ``finish`` writes the image lists and labelmap."""

    def __init__(
        self,
        zf: zipfile.ZipFile,
        categories: list[Category],
        params: ExportParams,
        stats: ExportStats,
        scratch: Path,
    ) -> None:
        self.zf, self.categories, self.params, self.stats = zf, categories, params, stats
        # a spool that outlives this call: add() appends to it, finish() copies and closes it
        self._stems: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", dir=scratch)  # noqa: SIM115

    def add(self, image: ExportImage, instances: list[ExportInstance]) -> None:
        kept, boxes = [], []
        for inst in instances:
            if list(inst.mask["size"]) != [image.height, image.width]:
                self.stats.skip("size_mismatch", image.id)
                continue
            area, box = rle.area_and_bbox(inst.mask)
            if area == 0:
                self.stats.skip("empty_mask", image.id)
            elif len(kept) >= MAX_OBJECTS:
                self.stats.skip("over_254_objects", image.id)
            else:
                kept.append(inst)
                boxes.append(box)
        self._write_jpeg(image)
        classes, objects = paint(kept, image.height, image.width)
        if self.params.void_border > 0:
            band = void_band(objects, self.params.void_border)
            classes[band] = VOID
            objects[band] = VOID
        stored = zipfile.ZIP_STORED  # PNG and JPEG are compressed already
        self.zf.writestr(
            arcname("SegmentationClass", f"{image.stem}.png"), png_bytes(classes), stored
        )
        self.zf.writestr(
            arcname("SegmentationObject", f"{image.stem}.png"), png_bytes(objects), stored
        )
        xml = annotation_xml(image, kept, boxes)
        self.zf.writestr(arcname("Annotations", f"{image.stem}.xml"), xml)
        self._stems.write(image.stem + "\n")
        self.stats.annotations += len(kept)

    def _write_jpeg(self, image: ExportImage) -> None:
        name = arcname("JPEGImages", f"{image.stem}.jpg")
        if image.format == "JPEG":
            write_stored(self.zf, image, name)
            return
        with (
            media.local_file(
                image.file,
                sha256=image.file_sha256 or None,
                max_bytes=settings.MASKWRIGHT["MAX_IMAGE_BYTES"],
            ) as path,
            PILImage.open(path) as img,
        ):
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=95)
        self.zf.writestr(name, out.getvalue(), zipfile.ZIP_STORED)

    def finish(self) -> None:
        # One image set listed under both tasks: Datumaro and the devkit read each list as a
        # subset, so a second list of the same images (a train and a default) doubles them.
        for task in IMAGE_SET_TASKS:
            with self.zf.open(
                arcname("ImageSets", task, f"{IMAGE_SET}.txt"), "w", force_zip64=True
            ) as out:
                self._stems.seek(0)
                while block := self._stems.read(1 << 20):
                    out.write(block.encode("utf-8"))
        self._stems.close()
        lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
        for c in self.categories:
            r, g, b = (int(v) for v in PALETTE[c.id])
            lines.append(f"{c.name}:{r},{g},{b}::")
        self.zf.writestr(arcname("labelmap.txt"), "\n".join(lines) + "\n")
