"""Importing COCO instances JSON: validate everything first, then write in one transaction.

Polygons, compressed RLE and uncompressed RLE all become stored compressed RLE. Categories
become the project's label classes (matched by name; new ones are appended in COCO id order).
A malformed file, or an id that points nowhere, is refused with an error naming the entry,
before anything is written.

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
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction

from annotation.common import rle
from annotation.common.exceptions import ApplicationError
from annotation.labeling.models import Instance, ReviewState, Source
from annotation.projects.models import LabelClass

from .models import Dataset, Image

_MAX_ERRORS = 20
# Distinct colours for labels created on import (the tab10 palette).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


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

    plan = CocoPlan(categories=categories, images=images)
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


def _labels_for(dataset: Dataset, categories: dict[int, str]) -> dict[int, LabelClass]:
    project = dataset.project
    existing = {lc.name: lc for lc in LabelClass.objects.filter(project=project)}
    position = max((lc.position for lc in existing.values()), default=-1) + 1
    by_cat: dict[int, LabelClass] = {}
    for cat_id in sorted(categories):
        name = categories[cat_id]
        if name not in existing:
            existing[name] = LabelClass.objects.create(
                project=project,
                name=name,
                color=PALETTE[position % len(PALETTE)],
                position=position,
            )
            position += 1
        by_cat[cat_id] = existing[name]
    return by_cat


BATCH_MASK_CHARS = 64 * 2**20  # RLE characters written per INSERT, at most (about)


def coco_apply(plan: CocoPlan, dataset: Dataset, author: Any) -> dict[str, Any]:
    """Write the plan's annotations onto the dataset's images (matched by file name).

    Image entries are matched to stored images by the uploaded path, then by base name. An
    entry with no stored image, or whose size differs, is skipped and reported, and its
    segmentations are never converted. The others are converted one at a time.
    """
    by_path: dict[str, Image] = {}
    by_base: dict[str, Image] = {}
    for img in Image.objects.filter(dataset=dataset).only("id", "original_name", "width", "height"):
        by_path[img.original_name] = img
        by_base.setdefault(PurePosixPath(img.original_name).name, img)
    warnings: list[str] = []
    matched: dict[int, Image] = {}
    for coco_id, entry in plan.images.items():
        img = by_path.get(entry["file_name"]) or by_base.get(PurePosixPath(entry["file_name"]).name)
        if img is None:
            warnings.append(
                f"image id {coco_id} '{entry['file_name']}': no such file in the dataset"
            )
        elif (img.width, img.height) != (entry["width"], entry["height"]):
            warnings.append(
                f"image id {coco_id} '{entry['file_name']}': "
                f"COCO says {entry['width']}×{entry['height']},"
                f" the stored image is {img.width}×{img.height}; its annotations were skipped"
            )
        else:
            matched[coco_id] = img
    created = 0
    skipped = 0
    with transaction.atomic():
        labels = _labels_for(dataset, plan.categories)
        batch: list[Instance] = []
        batch_chars = 0
        for coco_image_id, cat_id, segmentation, score in plan.annotations:
            img = matched.get(coco_image_id)
            if img is None:
                skipped += 1
                continue
            try:
                stored = rle.from_segmentation(segmentation, img.height, img.width)
            except rle.MaskFormatError as exc:  # checked in coco_parse; kept for safety
                raise CocoError(f"annotation on image id {coco_image_id}: {exc}") from exc
            area, bbox = rle.area_and_bbox(stored)
            batch.append(
                Instance(
                    image=img,
                    label=labels[cat_id],
                    mask=stored,
                    bbox=bbox,
                    area=area,
                    source=Source.IMPORT,
                    score=score,
                    author=author,
                    review_state=ReviewState.ACCEPTED,
                    z_order=created + len(batch),
                )
            )
            batch_chars += len(stored["counts"])
            # by count and by bytes: one INSERT must stay far below PostgreSQL's 1 GiB limit
            # on a statement's memory (300 masks at the run cap, 2.85 MB each, overran it)
            if len(batch) >= 1000 or batch_chars >= BATCH_MASK_CHARS:
                Instance.objects.bulk_create(batch)
                created += len(batch)
                batch, batch_chars = [], 0
        Instance.objects.bulk_create(batch)
        created += len(batch)
    return {
        "instances_created": created,
        "annotations_skipped": skipped,
        "crowd_skipped": plan.crowd_skipped,
        "labels": sorted({lc.name for lc in labels.values()}),
        "warnings": warnings[:100],
    }
