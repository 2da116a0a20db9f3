"""A dataset's masks, extreme points and boxes as COCO json files a batch job can train on.

Torch-free (the web process validates job parameters with it). Images are referenced by their
path under MEDIA_ROOT (``file_name``), so a trainer reads them in place with ``images_dir`` =
MEDIA_ROOT; annotation ids are the instance ids, so whatever comes back maps to its row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db.models import Q

from annotation.datasets.models import Image
from annotation.labeling.models import Instance, Prompt, ReviewState, Source
from annotation.segmentation.interactive import methods

CHUNK = 200
# Which instances a training job learns from, besides one method's pseudo labels (see
# :func:`train_sources`).
TRAIN_SOURCES = {
    "accepted": "masks people made or accepted (review state accepted)",
    "all": "every mask that was not rejected",
}


def _pseudo_of(found) -> str:
    return f"{found.label}: pseudo labels (not rejected)"


def train_sources() -> dict[str, str]:
    """What a training job's ``sources`` may be, with a description of each: ``accepted``,
    ``all``, or the name of a registered method (its pseudo labels that were not rejected)."""
    out = dict(TRAIN_SOURCES)
    for found in methods.registry().method_infos():
        out.setdefault(found.name, _pseudo_of(found))
    return out


def train_source_description(sources: str) -> str | None:
    """The description of one ``sources`` value, or None when it names nothing of the above."""
    if sources in TRAIN_SOURCES:
        return TRAIN_SOURCES[sources]
    found = methods.info(sources)
    return _pseudo_of(found) if found is not None else None


def instances_for(dataset_id: int, sources: str):
    qs = Instance.objects.filter(image__dataset_id=dataset_id, area__gt=0)
    if sources == "accepted":
        return qs.filter(review_state=ReviewState.ACCEPTED)
    qs = qs.exclude(review_state=ReviewState.REJECTED)
    if sources == "all":
        return qs
    return qs.filter(source=sources, pseudo=True)


def _images(dataset_id: int, image_ids: list[int] | None) -> Iterator[list[dict[str, Any]]]:
    last = 0
    while True:
        qs = Image.objects.filter(dataset_id=dataset_id, id__gt=last)
        if image_ids is not None:
            qs = qs.filter(id__in=image_ids)
        rows = list(qs.order_by("id").values("id", "file", "width", "height")[:CHUNK])
        if not rows:
            return
        last = rows[-1]["id"]
        yield rows


def write_json_atomic(path: Path, doc: Any) -> None:
    """``doc`` as JSON at ``path``, whole or not at all (a temp file, then a rename)."""
    tmp = path.with_suffix(".part")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def write_mask_coco(
    dataset_id: int, sources: str, path: Path, image_ids: list[int] | None = None
) -> dict[str, Any]:
    """COCO instances (RLE masks, one category) of the dataset's images that hold at least one
    chosen mask. Returns counts ``{"images", "instances"}`` and the written ``"image_ids"``."""
    images, annotations = [], []
    chosen = instances_for(dataset_id, sources)
    for rows in _images(dataset_id, image_ids):
        per_image: dict[int, list[dict[str, Any]]] = {}
        for inst in (
            chosen.filter(image_id__in=[r["id"] for r in rows])
            .order_by("image_id", "z_order", "id")
            .values("id", "image_id", "mask", "bbox", "area")
        ):
            per_image.setdefault(inst["image_id"], []).append(inst)
        for r in rows:
            if r["id"] not in per_image:
                continue
            images.append(
                {"id": r["id"], "file_name": r["file"], "width": r["width"], "height": r["height"]}
            )
            annotations.extend(
                {
                    "id": i["id"],
                    "image_id": r["id"],
                    "category_id": 1,
                    "segmentation": i["mask"],
                    "bbox": i["bbox"],
                    "area": i["area"],
                    "iscrowd": 0,
                }
                for i in per_image[r["id"]]
            )
    write_json_atomic(
        path,
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]},
    )
    return {
        "images": len(images),
        "instances": len(annotations),
        "image_ids": [im["id"] for im in images],
    }


# -- objects to outline (pseudo-mask jobs) ----------------------------------------------
POINT_SOURCES = ("extreme_points", "boxes", "both")


def extreme_points_of(dataset_id: int) -> dict[int, list[list[float]]]:
    """Instance id → its four extreme points ``[[x, y], ...]`` (the first active extreme-points
    prompt of the instance), for instances of the dataset that were outlined that way."""
    out: dict[int, list[list[float]]] = {}
    rows = (
        Prompt.objects.filter(
            instance__image__dataset_id=dataset_id, kind=Prompt.Kind.EXTREME_POINTS, undone=False
        )
        .order_by("instance_id", "seq")
        .values_list("instance_id", "payload")
    )
    for instance_id, payload in rows:
        out.setdefault(instance_id, payload["points"])
    return out


def name_extremes(points: list[list[float]]) -> dict[str, list[float]]:
    """Four clicked points in any order → ``{"left", "right", "top", "bottom"}`` (the point of
    smallest x is the left one, and so on; the canvas does not impose a click order)."""
    return {
        "left": min(points, key=lambda p: p[0]),
        "right": max(points, key=lambda p: p[0]),
        "top": min(points, key=lambda p: p[1]),
        "bottom": max(points, key=lambda p: p[1]),
    }


def write_object_coco(dataset_id: int, points_from: str, path: Path) -> dict[str, int]:
    """The objects a pseudo-mask job works on, as COCO json: per object its box (xywh) and, when an
    annotator gave them, its four extreme points (``extreme_points``: ``{"left": [x, y], …}``).

    ``points_from``: ``extreme_points`` (objects outlined with the extreme-points tool),
    ``boxes`` (boxes of imported instances), or ``both``. Pseudo labels are never inputs.
    Category: the instance's label id (0 if none)."""
    if points_from not in POINT_SOURCES:
        raise ValueError(f"points_from must be one of {POINT_SOURCES}")
    points = extreme_points_of(dataset_id) if points_from in ("extreme_points", "both") else {}
    wanted = Q(pk__in=list(points)) if points else Q(pk__in=[])
    if points_from in ("boxes", "both"):
        wanted |= Q(source=Source.IMPORT)
    chosen = Instance.objects.filter(image__dataset_id=dataset_id, pseudo=False).filter(wanted)
    images, annotations, labels = [], [], set()
    for rows in _images(dataset_id, None):
        per_image: dict[int, list[dict[str, Any]]] = {}
        for inst in (
            chosen.filter(image_id__in=[r["id"] for r in rows])
            .order_by("image_id", "id")
            .values("id", "image_id", "bbox", "label_id")
        ):
            per_image.setdefault(inst["image_id"], []).append(inst)
        for r in rows:
            objects = per_image.get(r["id"])
            if not objects:
                continue
            images.append(
                {"id": r["id"], "file_name": r["file"], "width": r["width"], "height": r["height"]}
            )
            for inst in objects:
                ann = {
                    "id": inst["id"],
                    "image_id": r["id"],
                    "category_id": inst["label_id"] or 0,
                    "iscrowd": 0,
                }
                if inst["id"] in points:
                    named = name_extremes(points[inst["id"]])
                    ann["extreme_points"] = named
                    x0, x1, y0, y1 = (
                        named["left"][0],
                        named["right"][0],
                        named["top"][1],
                        named["bottom"][1],
                    )
                    ann["bbox"] = [x0, y0, x1 - x0, y1 - y0]
                else:
                    ann["bbox"] = inst["bbox"]
                if ann["bbox"][2] < 2 or ann["bbox"][3] < 2:
                    continue  # a degenerate box outlines nothing
                labels.add(ann["category_id"])
                annotations.append(ann)
    write_json_atomic(
        path,
        {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in sorted(labels)],
        },
    )
    return {"images": len(images), "objects": len(annotations)}
