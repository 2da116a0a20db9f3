"""Pseudo-mask jobs: a mask for every outlined object of a dataset, from a method that learns
from extreme points or boxes.

One kind per method that declares a ``pseudo_masks`` batch job (``inference.jobs``). Inputs are
the dataset's objects with four extreme points (drawn with the canvas's extreme-points tool)
and/or the boxes of imported instances (``training_data.write_object_coco``). The method's
entry trains on these objects and writes one mask per object into the job's work folder,
resuming from it after a worker restart. The masks then become pseudo labels (``source`` = the
method, a score, review state pending), one image per transaction; an image that already holds
this job's masks is skipped, so a redelivered task duplicates nothing. A model the method
trained on the way is kept as a model of the project (of the method), which the annotation
page can offer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.db import transaction

from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset, Image
from annotation.jobs.engine import JobContext
from annotation.labeling.models import Instance, Source
from annotation.labeling.services import instance_create
from annotation.projects.models import LabelClass

from .runs import (
    MAX_ERRORS,
    Kind,
    batch_device,
    failure,
    keep_model,
    register_kinds,
    work_dir,
)
from .training_data import extreme_points_of, write_json_atomic, write_object_coco

log = logging.getLogger(__name__)


def _extra(info: Any) -> tuple[Any, ...]:
    """The platform's parameters of a pseudo-mask job."""
    from inference.jobs import Param

    return (
        Param(
            "points_from",
            "Objects from",
            "choice",
            "both",
            choices=(
                ("both", "extreme points and imported boxes"),
                ("extreme_points", "extreme points only"),
                ("boxes", "imported boxes only"),
            ),
            help="Objects outlined with the extreme-points tool, and/or boxes of imported"
            " instances",
        ),
        Param("min_score", "Lowest score kept", "float", 0.0, minimum=0.0, maximum=1.0),
        Param(
            "keep_model",
            "Keep the trained model",
            "bool",
            True,
            help="store what the method trained as a model of the project",
        ),
    )


def _validate(kind: Kind, mine: dict[str, Any], own: dict[str, Any], dataset: Dataset) -> None:
    """Launch-time check: the dataset has objects to work on."""
    points_from = own["points_from"]
    outlined = bool(extreme_points_of(dataset.id)) if points_from != "boxes" else False
    imported = (
        points_from != "extreme_points"
        and Instance.objects.filter(image__dataset=dataset, source=Source.IMPORT).exists()
    )
    if not (outlined or imported):
        raise ApplicationError(
            "no objects to work on: outline objects with the extreme-points tool, or import "
            "a COCO json with boxes (points_from: " + points_from + ")"
        )


def _run(ctx: JobContext, kind: Kind) -> dict[str, Any]:
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    mine, own = kind.parse(ctx.params)
    folder = work_dir(ctx.job_id, kind.job.kind)
    objects_json = folder / "objects.json"
    if objects_json.exists():  # a resumed job keeps the object list it started with
        errors = json.loads((folder / "errors.json").read_text())
    else:
        write_object_coco(dataset.id, own["points_from"], folder / "all_objects.json")
        kept, errors = _drop_unreadable(json.loads((folder / "all_objects.json").read_text()))
        write_json_atomic(folder / "errors.json", errors)
        write_json_atomic(objects_json, kept)  # last: once it exists, both files are whole
    n_objects = len(json.loads(objects_json.read_text())["annotations"])
    if n_objects == 0:
        raise ApplicationError(
            f"no object left to work on: {len(errors)} image(s) could not be read"
        )
    # One progress scale: the method's own work, then storing (one unit per object).
    scale = {"total": n_objects}

    def progress(done: int, total: int, stage: str, extra: Any = None) -> None:
        scale["total"] = total  # the method's last word on its own total
        ctx.save_progress(min(done, total), total + n_objects, {"stage": stage})

    from annotation.datasets.storage import images_folder

    names = [im["file_name"] for im in json.loads(objects_json.read_text())["images"]]
    images_dir = images_folder(names, folder / "media")  # MEDIA_ROOT on the local store
    result = kind.job.entry()(
        objects_json, folder / "run", images_dir, mine, batch_device(), progress
    )
    created, skipped = _store_masks(ctx, kind, result, own["min_score"], scale["total"], n_objects)
    model_id = None
    if own["keep_model"] and result.model_file is not None and Path(result.model_file).exists():
        metrics = {k: result.stats.get(k) for k in ("objects", "retrieved_share")}
        model_id = keep_model(
            ctx, kind, dataset, file=result.model_file, config=result.model_config, metrics=metrics
        )
    total = scale["total"] + n_objects
    ctx.save_progress(total, total, {"stage": "done"})
    return {
        "objects": n_objects,
        "instances": created,
        "skipped_images": skipped,
        "failed": len(errors),
        "errors": errors,
        "model_id": model_id,
        "model_name": result.model_name,
        **result.stats,
    }


def _drop_unreadable(doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO object list without the images that do not decode (a broken file must fail
    its own objects, not the job), and ``[{image_id, name, error}]`` of those left out."""
    from annotation.datasets.storage import read_rgb

    names = dict(
        Image.objects.filter(id__in=[im["id"] for im in doc["images"]]).values_list(
            "id", "original_name"
        )
    )
    bad: list[dict[str, Any]] = []
    for im in doc["images"]:
        try:
            read_rgb(im["file_name"])
        except Exception as exc:  # noqa: BLE001 (any decoding failure is this image's problem)
            bad.append(failure(im["id"], names.get(im["id"], ""), exc))
    dropped = {b["image_id"] for b in bad}
    doc["images"] = [im for im in doc["images"] if im["id"] not in dropped]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] not in dropped]
    return doc, bad[:MAX_ERRORS]


def _store_masks(
    ctx: JobContext, kind: Kind, result: Any, min_score: float, offset: int, n_objects: int
) -> tuple[int, int]:
    tag = f"job-{ctx.job_id}"
    doc = json.loads(Path(result.masks_json).read_text())
    per_image: dict[int, list[dict[str, Any]]] = {}
    for ann in doc["annotations"]:
        per_image.setdefault(int(ann["image_id"]), []).append(ann)
    labels = set(
        LabelClass.objects.filter(project__datasets__id=ctx.dataset_id).values_list("id", flat=True)
    )
    created = skipped = done = 0
    for image in Image.objects.filter(id__in=list(per_image)).order_by("id"):
        anns = per_image[image.id]
        if Instance.objects.filter(
            image=image, source=kind.method, pseudo=True, model_version=tag
        ).exists():
            skipped += 1
        else:
            with transaction.atomic():
                for ann in anns:
                    if float(ann.get("score") or 0.0) < min_score or not ann.get("area"):
                        continue
                    label = ann.get("category_id")
                    instance_create(
                        image=image,
                        mask=ann["segmentation"],
                        source=kind.method,
                        pseudo=True,
                        label_id=label if label in labels else None,
                        model_name=result.model_name,
                        model_version=tag,
                        score=float(ann.get("score") or 0.0),
                    )
                    created += 1
        done += len(anns)
        total = offset + n_objects
        ctx.save_progress(min(total, offset + done), total, {"stage": "store"})
    return created, skipped


KINDS = register_kinds("pseudo_masks", _run, _validate, _extra)
