"""What an export's writers are handed: the caller's parameters, the categories, images and
instances of a chunk, the running counts, and the rule for names inside the zip. Shared by
:mod:`.services` (which reads the database) and the format writers :mod:`.coco` and :mod:`.voc`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from annotation.common.exceptions import ApplicationError

FORMATS = ("coco", "voc")
MASK_MODES = ("rle", "polygon")
FILTERS = ("accepted", "all")


@dataclass(frozen=True)
class ExportParams:
    """What the caller chose. ``tolerance`` is the polygon simplification in pixels
    (``cv2.approxPolyDP`` epsilon); ``void_border`` the VOC void band width in pixels (0: none)."""

    format: str = "coco"
    masks: str = "rle"
    tolerance: float = 1.0
    filter: str = "accepted"
    void_border: int = 0

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ExportParams:
        """Validate job params; raises :class:`ApplicationError` naming the bad value."""
        unknown = set(params) - {"format", "masks", "tolerance", "filter", "void_border"}
        if unknown:
            raise ApplicationError(f"unknown export parameters: {sorted(unknown)}")
        out = cls(**params)
        if out.format not in FORMATS:
            raise ApplicationError(f"format must be one of {FORMATS}, got {out.format!r}")
        if out.masks not in MASK_MODES:
            raise ApplicationError(f"masks must be one of {MASK_MODES}, got {out.masks!r}")
        if out.filter not in FILTERS:
            raise ApplicationError(f"filter must be one of {FILTERS}, got {out.filter!r}")
        if not isinstance(out.tolerance, (int, float)) or not 0 <= out.tolerance <= 50:
            raise ApplicationError(f"tolerance must be a number in [0, 50], got {out.tolerance!r}")
        if not isinstance(out.void_border, int) or not 0 <= out.void_border <= 20:
            raise ApplicationError(
                f"void_border must be an integer in [0, 20], got {out.void_border!r}"
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
    path: Path  # the stored file under MEDIA_ROOT
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
    images: int = 0
    annotations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


class Writer(Protocol):
    def add(self, image: ExportImage, instances: list[ExportInstance]) -> None: ...

    def finish(self) -> None: ...


def arcname(*parts: str) -> str:
    """Join zip member parts, refusing anything that could point outside the zip root."""
    name = "/".join(parts)
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"unsafe name in export: {name!r}")
    return name
