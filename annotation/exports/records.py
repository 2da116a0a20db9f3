"""What an export's writers are handed: the caller's parameters, the categories, images and
instances of a chunk, the running counts, and the rule for names inside the zip. Shared by
:mod:`.services` (which reads the database) and the format writers :mod:`.coco`, :mod:`.voc`
and :mod:`.yolo`."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from typing import Any, Protocol

from annotation.common import media
from annotation.common.exceptions import ApplicationError

FORMATS = ("coco", "voc", "yolo")
MASK_MODES = ("rle", "polygon")
# Which masks an export ships, by review state (``annotation.labeling.models.ReviewState``).
# Whatever the source (drawn, a method's pseudo label, an import), only the review state
# counts; "all" is what a training job's "all" is too (``segmentation.batch.training_data``).
FILTERS = {
    "accepted": "Accepted only: masks people made, imported or accepted in review",
    "all": "Every mask not rejected: also pending pseudo labels and masks marked needs fix",
}
# Why a mask was left out of an export (``ExportStats.skipped`` keys), as the Jobs page says it.
SKIP_REASONS = {
    "no_label": "had no label (export them under a label of your choice)",
    "empty_mask": "had an empty mask, or one too thin to keep as a polygon",
    "size_mismatch": "had a mask of another size than its image",
    "over_254_objects": "were past the 254 objects a VOC image can hold",
}
# Image ids kept per skip reason, so that the result can point at a few of the images.
SKIPPED_IMAGES_KEPT = 20


@dataclass(frozen=True)
class ExportParams:
    """What the caller chose. ``masks`` applies to COCO (YOLO is always polygons, VOC always
    PNGs); ``tolerance`` is the polygon simplification in pixels (``cv2.approxPolyDP``
    epsilon, COCO polygons and YOLO); ``void_border`` the VOC void band width in pixels (0:
    none); ``unlabeled_label_id`` a label of the project under which masks without a label
    are exported (None: they are skipped and counted as ``no_label``)."""

    format: str = "coco"
    masks: str = "rle"
    tolerance: float = 1.0
    filter: str = "accepted"
    void_border: int = 0
    unlabeled_label_id: int | None = None

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ExportParams:
        """Validate job params; raises :class:`ApplicationError` naming the bad value.

        That ``unlabeled_label_id`` is a label of the job's project is checked by the jobs
        engine, as for every ``*_id`` parameter (``annotation.jobs.params``)."""
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise ApplicationError(f"unknown export parameters: {sorted(unknown)}")
        values = dict(params)
        if values.get("unlabeled_label_id") == "":  # a form's "skip them"
            values["unlabeled_label_id"] = None
        out = cls(**values)
        if out.format not in FORMATS:
            raise ApplicationError(f"format must be one of {FORMATS}, got {out.format!r}")
        if out.masks not in MASK_MODES:
            raise ApplicationError(f"masks must be one of {MASK_MODES}, got {out.masks!r}")
        if out.filter not in FILTERS:
            raise ApplicationError(f"filter must be one of {tuple(FILTERS)}, got {out.filter!r}")
        if (
            isinstance(out.tolerance, bool)
            or not isinstance(out.tolerance, (int, float))
            or not 0 <= out.tolerance <= 50
        ):
            raise ApplicationError(f"tolerance must be a number in [0, 50], got {out.tolerance!r}")
        if (
            isinstance(out.void_border, bool)
            or not isinstance(out.void_border, int)
            or not 0 <= out.void_border <= 20
        ):
            raise ApplicationError(
                f"void_border must be an integer in [0, 20], got {out.void_border!r}"
            )
        label = out.unlabeled_label_id
        if label is not None and (
            isinstance(label, bool) or not isinstance(label, int) or not 1 <= label < 2**63
        ):
            raise ApplicationError(
                f"unlabeled_label_id must be the id of a label or null, got {label!r}"
            )
        return out


@dataclass(frozen=True)
class Category:
    id: int  # 1 + index in the project's label order (position, then id); 0 is background
    label_id: int
    name: str


@dataclass
class ExportImage:
    id: int
    file: str  # the stored file's name in the media store (annotation.common.media)
    file_sha256: str  # digest of the stored bytes ("" when unknown), what a cached copy must match
    stem: str  # path-safe and unique within the export: "<id>_<cleaned original stem>"
    ext: str  # of the stored file, e.g. "jpg"
    format: str  # PIL format name of the stored file
    width: int
    height: int


@dataclass
class ExportInstance:
    id: int
    category: Category
    mask: dict[str, Any]  # stored compressed RLE, size [height, width]
    z_order: int


@dataclass
class ExportStats:
    """Running counts. ``skipped``: masks left out, by reason (a :data:`SKIP_REASONS` key);
    ``skipped_images``: the first :data:`SKIPPED_IMAGES_KEPT` image ids behind each reason;
    ``parts_dropped``: masks shipped without some of their parts (YOLO's part limit)."""

    images: int = 0
    annotations: int = 0
    parts_dropped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_images: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, why: str, image_id: int | None = None) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1
        if image_id is not None:
            kept = self.skipped_images.setdefault(why, [])
            if len(kept) < SKIPPED_IMAGES_KEPT and image_id not in kept:
                kept.append(image_id)


class Writer(Protocol):
    def add(self, image: ExportImage, instances: list[ExportInstance]) -> None: ...

    def finish(self) -> None: ...


def arcname(*parts: str) -> str:
    """Join zip member parts, refusing anything that could point outside the zip root."""
    name = "/".join(parts)
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"unsafe name in export: {name!r}")
    return name


def write_stored(zf: zipfile.ZipFile, image: ExportImage, name: str) -> None:
    """Copy ``image``'s stored bytes into ``zf`` as ``name``, uncompressed (stored images are
    compressed already: deflating them again costs time for nothing). A local file is added
    as before; a remote object is streamed in, never held whole in memory."""
    if media.is_local() and not media.is_external(image.file):  # not an attached bucket's
        zf.write(media.local_path(image.file), name, compress_type=zipfile.ZIP_STORED)
        return
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_STORED
    with media.open_stream(image.file) as src, zf.open(info, "w", force_zip64=True) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
