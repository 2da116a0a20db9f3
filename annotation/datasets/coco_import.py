"""Reading COCO instances JSON: validate everything before anything is written.

Polygons, compressed RLE and uncompressed RLE are all accepted (:mod:`.coco_apply` stores them
as compressed RLE; :mod:`.coco_labels` decides which label each category gets). A malformed
file, or an id that points nowhere, is refused with an error naming the entry, before anything
is written.

Memory stays in proportion to the file, never to the sizes it declares: an image entry above
``MAX_IMAGE_PIXELS`` is refused (no stored image can be that large), every segmentation is
checked without drawing a pixel (:func:`rle.check_segmentation`), and it is converted only
when written, one at a time, at the size of the stored image it matched. A 245-byte file
declaring 40000×40000 used to make the web process decode 1.6 GB per annotation.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings

from annotation.common import rle
from annotation.common.exceptions import ApplicationError

_MAX_ERRORS = 20


class CocoError(ApplicationError):
    code = "invalid_coco"


@dataclass
class CocoPlan:
    """A validated COCO file, ready to be applied to a dataset."""

    categories: dict[int, str]
    images: dict[int, dict[str, Any]]
    # (coco image id, category id, checked segmentation as in the file, score or None)
    annotations: list[tuple[int, int, Any, float | None]] = field(default_factory=list)
    crowd_skipped: int = 0
    source: str = ""  # the file's name, for messages


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def coco_parse(stream: BinaryIO, source_name: str = "COCO json") -> CocoPlan:
    """Read and validate a COCO instances file. Raises :class:`CocoError` naming the entries."""
    limit = settings.MASKWRIGHT["MAX_COCO_JSON_BYTES"]
    max_pixels = settings.MASKWRIGHT["MAX_IMAGE_PIXELS"]
    too_large = f"{source_name} is larger than the limit of {limit:,} bytes for a COCO json"
    if (getattr(stream, "size", None) or 0) > limit:  # an upload knows its size: refuse unread
        raise CocoError(too_large)
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise CocoError(too_large)
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CocoError(f"{source_name} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise CocoError(f"{source_name} is nested too deeply to be a COCO file") from None
    del raw
    if not isinstance(doc, dict):
        raise CocoError(f"{source_name}: the top level must be an object")
    errors: list[str] = []

    def err(msg: str) -> None:
        if len(errors) < _MAX_ERRORS:
            errors.append(msg)

    sections = {}
    for key in ("images", "annotations", "categories"):
        value = doc.get(key, [])
        if not isinstance(value, list):
            raise CocoError(f"{source_name}: '{key}' must be a list")
        sections[key] = value

    categories: dict[int, str] = {}
    for i, cat in enumerate(sections["categories"]):
        if (
            not isinstance(cat, dict)
            or not _is_int(cat.get("id"))
            or not isinstance(cat.get("name"), str)
            or not cat.get("name")
        ):
            err(f"categories[{i}]: needs an integer 'id' and a non-empty 'name'")
        elif cat["id"] in categories:
            err(f"categories[{i}]: duplicate id {cat['id']}")
        else:
            categories[cat["id"]] = cat["name"][:100]

    images: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(sections["images"]):
        if not isinstance(img, dict) or not _is_int(img.get("id")):
            err(f"images[{i}]: needs an integer 'id'")
            continue
        label = f"images[{i}] (id {img['id']})"
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            err(f"{label}: needs a 'file_name'")
        elif not all(_is_int(img.get(k)) and img[k] > 0 for k in ("width", "height")):
            err(f"{label}: needs positive integer 'width' and 'height'")
        elif img["width"] * img["height"] > max_pixels:
            err(
                f"{label}: {img['width']}×{img['height']} is more than the {max_pixels:,} pixels an"
                " image may have here"
            )
        elif img["id"] in images:
            err(f"{label}: duplicate id")
        else:
            images[img["id"]] = img

    plan = CocoPlan(categories=categories, images=images, source=source_name)
    for i, ann in enumerate(sections["annotations"]):
        if not isinstance(ann, dict):
            err(f"annotations[{i}]: must be an object")
            continue
        label = f"annotations[{i}] (id {ann.get('id', '?')})"
        image = images.get(ann.get("image_id"))  # type: ignore[arg-type]
        if image is None:
            err(f"{label}: image_id {ann.get('image_id')!r} is not in 'images'")
            continue
        if ann.get("category_id") not in categories:
            err(f"{label}: category_id {ann.get('category_id')!r} is not in 'categories'")
            continue
        if "segmentation" not in ann:
            err(f"{label}: has no 'segmentation'")
            continue
        try:
            rle.check_segmentation(
                ann["segmentation"], image["height"], image["width"], max_pixels=max_pixels
            )
        except rle.MaskFormatError as exc:
            err(f"{label}: {exc}")
            continue
        if ann.get("iscrowd") == 1:
            # Crowd regions are not instances; keeping them would teach models wrong objects.
            plan.crowd_skipped += 1
            continue
        score = ann.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            # json reads NaN and Infinity, and ints of any size: none can be stored and shown
            try:
                score = float(score)
            except OverflowError:
                score = math.nan
            if not math.isfinite(score):
                err(f"{label}: score must be a finite number")
                continue
        else:
            score = None
        plan.annotations.append((ann["image_id"], ann["category_id"], ann["segmentation"], score))
    if errors:
        more = " (first 20 shown)" if len(errors) >= _MAX_ERRORS else ""
        raise CocoError(
            f"{source_name} has {len(errors)} invalid "
            f"entr{'y' if len(errors) == 1 else 'ies'}{more}: " + "; ".join(errors),
            extra={"errors": errors},
        )
    return plan
