"""Writing a parsed COCO file onto a dataset's stored images, adding only what is not there.

Each COCO image entry finds at most one stored image:

1. A file of this upload named by the entry's ``file_name`` (its path in the zip, else its base
   name when only one uploaded file has it): the image it was stored as or, refused as a
   duplicate, the stored image with the same sha256. A file refused for any other reason
   brings in nothing: its annotations are skipped even if a stored image shares its name.
2. Otherwise a stored image whose ``source_path`` is the ``file_name``, else whose
   ``original_name`` is its base name. Two or more candidates: skipped, with a warning (a
   guess would put masks on the wrong picture).
3. The stored size must be the entry's ``width`` × ``height``; otherwise skipped and reported.

A mask is *already there* when an instance on the same image with the same label has the very
same compressed RLE as its mask, or as the mask it came with (``base_mask``: an imported mask
a person has since refined still counts). Exact RLE rather than an IoU: the same file converted
at the same size gives the same RLE, and equality is checked on digests computed by Postgres,
one query per ``IMAGES_PER_QUERY`` images, never one per mask. Masks repeated inside one file
are added once.

Segmentations are converted one at a time, at the size of the stored image they matched (never
at the size the file declares), and written in batches bounded by count and by RLE bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import MD5

from annotation.common import rle
from annotation.labeling.models import Instance, ReviewState, Source

from .coco_import import CocoError, CocoPlan
from .coco_labels import DROP, Choice, resolve_labels
from .ingest import FileReport, base_name
from .models import Dataset, Image

IMAGES_PER_QUERY = 200  # images whose existing masks one query reads
NAMES_PER_QUERY = 1000  # file names looked up per query
BATCH_MASK_CHARS = 64 * 2**20  # RLE characters written per INSERT, at most (about)
BATCH_MASKS = 1000
MAX_WARNINGS = 100


@dataclass(frozen=True)
class _Target:
    id: int
    width: int
    height: int


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _digest(counts: str) -> str:
    # the same digest Postgres' md5() gives for the stored text (RLE counts are ASCII)
    return hashlib.md5(counts.encode(), usedforsecurity=False).hexdigest()


def _one(ids: list[Any] | None) -> Any:
    return ids[0] if ids and len(ids) == 1 else None


def _match_images(
    plan: CocoPlan, dataset: Dataset, uploaded: list[FileReport], warnings: list[str]
) -> dict[int, _Target]:
    """COCO image id -> the stored image its annotations go on (rules 1–3 of the module)."""
    by_path = {item.name: item for item in uploaded}
    by_base: dict[str, list[FileReport]] = {}
    for item in uploaded:
        by_base.setdefault(base_name(item.name), []).append(item)
    wanted: dict[int, int] = {}
    unresolved: dict[int, str] = {}
    for coco_id, entry in plan.images.items():
        name = entry["file_name"]
        item = by_path.get(name) or _one(by_base.get(base_name(name)))
        if item is None:
            unresolved[coco_id] = name
        elif item.image_id is None:
            warnings.append(
                f"image id {coco_id} '{name}': the file was refused ({item.reason});"
                " its annotations were skipped"
            )
        else:
            wanted[coco_id] = item.image_id

    by_source: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    images = Image.objects.filter(dataset=dataset)
    for chunk in _chunks(sorted(set(unresolved.values())), NAMES_PER_QUERY):
        for image_id, path in images.filter(source_path__in=chunk).values_list("id", "source_path"):
            by_source.setdefault(path, []).append(image_id)
    bases = {base_name(name) for name in unresolved.values()}
    for chunk in _chunks(sorted(bases), NAMES_PER_QUERY):
        for image_id, name in images.filter(original_name__in=chunk).values_list(
            "id", "original_name"
        ):
            by_name.setdefault(name, []).append(image_id)
    for coco_id, name in unresolved.items():
        ids = by_source.get(name) or by_name.get(base_name(name))
        if not ids:
            warnings.append(f"image id {coco_id} '{name}': no such file in the dataset")
        elif len(ids) > 1:
            warnings.append(
                f"image id {coco_id} '{name}': {len(ids)} stored images have this name;"
                " its annotations were skipped (name the path inside the archive)"
            )
        else:
            wanted[coco_id] = ids[0]

    sizes: dict[int, tuple[int, int]] = {}
    for chunk in _chunks(sorted(set(wanted.values())), NAMES_PER_QUERY):
        for image_id, width, height in images.filter(id__in=chunk).values_list(
            "id", "width", "height"
        ):
            sizes[image_id] = (width, height)
    matched: dict[int, _Target] = {}
    for coco_id, image_id in wanted.items():
        entry = plan.images[coco_id]
        if image_id not in sizes:  # deleted since it was stored
            warnings.append(f"image id {coco_id} '{entry['file_name']}': no such file")
        elif sizes[image_id] != (entry["width"], entry["height"]):
            width, height = sizes[image_id]
            warnings.append(
                f"image id {coco_id} '{entry['file_name']}': "
                f"COCO says {entry['width']}×{entry['height']},"
                f" the stored image is {width}×{height}; its annotations were skipped"
            )
        else:
            matched[coco_id] = _Target(image_id, *sizes[image_id])
    return matched


def _existing(image_ids: list[int]) -> tuple[set[tuple[int, int | None, str]], dict[int, int]]:
    """(image, label, RLE digest) of the masks already on ``image_ids``, and each image's top
    z-order: one query."""
    rows = (
        Instance.objects.filter(image_id__in=image_ids)
        .annotate(
            mask_md5=MD5(KeyTextTransform("counts", "mask")),
            base_md5=MD5(KeyTextTransform("counts", "base_mask")),
        )
        .values_list("image_id", "label_id", "z_order", "mask_md5", "base_md5")
    )
    seen: set[tuple[int, int | None, str]] = set()
    top: dict[int, int] = {}
    for image_id, label_id, z_order, mask_md5, base_md5 in rows:
        top[image_id] = max(top.get(image_id, z_order), z_order)
        seen.update((image_id, label_id, d) for d in (mask_md5, base_md5) if d)
    return seen, top


class _Writer:
    """Instances written in batches cut by count and by RLE bytes: one INSERT must stay far
    below PostgreSQL's 1 GiB limit on a statement's memory (300 masks at the run cap, 2.85 MB
    each, overran it)."""

    def __init__(self) -> None:
        self.batch: list[Instance] = []
        self.chars = 0
        self.created = 0

    def add(self, instance: Instance) -> None:
        self.batch.append(instance)
        self.chars += len(instance.mask["counts"])
        if len(self.batch) >= BATCH_MASKS or self.chars >= BATCH_MASK_CHARS:
            self.flush()

    def flush(self) -> None:
        Instance.objects.bulk_create(self.batch)
        self.created += len(self.batch)
        self.batch, self.chars = [], 0


def coco_apply(
    plan: CocoPlan,
    dataset: Dataset,
    author: Any,
    *,
    choices: dict[int, Choice] | None = None,
    uploaded: list[FileReport] | None = None,
) -> dict[str, Any]:
    """Write the plan's annotations that are not already there; returns the report's COCO part.

    ``choices`` (from :func:`.coco_labels.check_category_map`) says which label each category
    gets; a category it leaves out gets a label of its name. ``uploaded`` are the files of the
    same upload, which the plan's file names are matched against first.
    """
    choices = choices or {}
    warnings: list[str] = []
    matched = _match_images(plan, dataset, uploaded or [], warnings)
    per_image: dict[_Target, list[tuple[int, Any, float | None]]] = {}
    used: set[int] = set()
    skipped = dropped = 0
    for coco_image_id, cat_id, segmentation, score in plan.annotations:
        target = matched.get(coco_image_id)
        if choices.get(cat_id) == DROP:
            dropped += 1
        elif target is None:
            skipped += 1
        else:
            per_image.setdefault(target, []).append((cat_id, segmentation, score))
            used.add(cat_id)
    duplicates = 0
    writer = _Writer()
    with transaction.atomic():
        labels, created_labels = resolve_labels(dataset.project, plan, choices, used)
        for chunk in _chunks(per_image, IMAGES_PER_QUERY):
            seen, top = _existing([target.id for target in chunk])
            for target in chunk:
                z_order = top.get(target.id, -1) + 1
                for cat_id, segmentation, score in per_image[target]:
                    label = labels[cat_id]
                    if label is None:  # dropped (counted above); kept for safety
                        continue
                    try:
                        stored = rle.from_segmentation(segmentation, target.height, target.width)
                    except rle.MaskFormatError as exc:  # checked in coco_parse; kept for safety
                        raise CocoError(f"annotation on image {target.id}: {exc}") from exc
                    key = (target.id, label.id, _digest(stored["counts"]))
                    if key in seen:
                        duplicates += 1
                        continue
                    seen.add(key)
                    area, bbox = rle.area_and_bbox(stored)
                    writer.add(
                        Instance(
                            image_id=target.id,
                            label=label,
                            mask=stored,
                            bbox=bbox,
                            area=area,
                            source=Source.IMPORT,
                            score=score,
                            author=author,
                            review_state=ReviewState.ACCEPTED,
                            z_order=z_order,
                        )
                    )
                    z_order += 1
        writer.flush()
    return {
        "instances_created": writer.created,
        "duplicates_skipped": duplicates,
        "annotations_skipped": skipped,
        "dropped": dropped,
        "crowd_skipped": plan.crowd_skipped,
        "labels": sorted({lc.name for lc in labels.values() if lc is not None}),
        "labels_created": created_labels,
        "categories_dropped": sorted(
            plan.categories[c] for c, choice in choices.items() if choice == DROP
        ),
        "warnings": warnings[:MAX_WARNINGS],
    }
