"""The ``exits`` job: EXITS pseudo masks for every outlined object of a dataset.

Inputs are the dataset's objects with four extreme points (drawn with the canvas's
extreme-points tool) and/or the boxes of imported instances (``training_data.write_exits_coco``).
The library (``inference.methods.exits.run_exits``) warms up the similarity extractor,
retrieves pseudo points, trains the generator on these objects and writes one pseudo mask per
object into the job's work folder, resuming from it after a worker restart. The masks then
become pseudo labels (``source`` = :data:`METHOD`, a score, review state pending), one image per
transaction; an image that already holds this job's masks is skipped, so a redelivered task
duplicates nothing. The trained generator is kept as a model of the project (of :data:`METHOD`),
which the annotation page can offer for four-click outlining.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset, Image
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import parse_params
from annotation.labeling.models import Instance, Source
from annotation.labeling.services import instance_create
from annotation.projects.models import LabelClass

from .training_data import POINT_SOURCES, extreme_points_of, write_exits_coco, write_json_atomic

log = logging.getLogger(__name__)
METHOD = "exits"  # the registered method (and job kind) whose pseudo masks this job stores
MAX_ERRORS = 200  # unreadable images listed in the result
ENCODERS = ("effnet-lite0", "mae-vitb16", "tiny-conv")  # tiny-conv: a small random encoder (tests)


@dataclass(frozen=True)
class ExitsParams:
    """What a launcher may set: where the objects come from, the schedule (CPU-sized defaults;
    the paper trains 8 warm-up + 10 epochs on 512 px crops; these are what ``maskwright bench
    exits`` measured on CPU), and the lowest score kept."""

    points_from: str = "both"
    warmup_epochs: int = 2
    epochs: int = 6
    crop_size: int = 160
    encoder: str = "effnet-lite0"
    min_score: float = 0.0
    keep_generator: bool = True

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ExitsParams:
        p = parse_params(
            cls,
            raw,
            "EXITS",
            {
                "points_from": str,
                "warmup_epochs": int,
                "epochs": int,
                "crop_size": int,
                "encoder": str,
                "min_score": float,
                "keep_generator": bool,
            },
        )
        if p.points_from not in POINT_SOURCES:
            raise ApplicationError(f"points_from must be one of {POINT_SOURCES}")
        if not 0 <= p.warmup_epochs <= 50 or not 1 <= p.epochs <= 100:
            raise ApplicationError("warmup_epochs must be in [0, 50] and epochs in [1, 100]")
        if p.crop_size < 64 or p.crop_size > 1024 or p.crop_size % 32:
            raise ApplicationError("crop_size must be a multiple of 32 between 64 and 1024")
        if p.encoder not in ENCODERS:
            raise ApplicationError(f"encoder must be one of {ENCODERS}")
        if not 0.0 <= p.min_score <= 1.0:
            raise ApplicationError("min_score must be in [0, 1]")
        return p


def exits_validate(raw: dict[str, Any], dataset: Dataset) -> ExitsParams:
    """Launch-time check (no torch): parameters, and that the dataset has objects to work on."""
    params = ExitsParams.parse(raw)
    outlined = bool(extreme_points_of(dataset.id)) if params.points_from != "boxes" else False
    imported = (
        params.points_from != "extreme_points"
        and Instance.objects.filter(image__dataset=dataset, source=Source.IMPORT).exists()
    )
    if not (outlined or imported):
        raise ApplicationError(
            "no objects to work on: outline objects with the extreme-points tool, or import "
            "a COCO json with boxes (points_from: " + params.points_from + ")"
        )
    return params


def work_dir(job_id: int) -> Path:
    path = Path(settings.MEDIA_ROOT) / "jobs" / str(job_id) / METHOD
    path.mkdir(parents=True, exist_ok=True)
    return path


@register_runner(METHOD, queue="batch", validate=exits_validate)
def exits_run(ctx: JobContext) -> dict[str, Any]:
    """Runner of the ``exits`` job kind: pseudo masks from extreme points or boxes."""
    from inference.methods.exits import ExitsConfig, run_exits

    from .mis import batch_device

    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    params = ExitsParams.parse(ctx.params)
    folder = work_dir(ctx.job_id)
    objects_json = folder / "objects.json"
    if objects_json.exists():  # a resumed job keeps the object list it started with
        errors = json.loads((folder / "errors.json").read_text())
    else:
        write_exits_coco(dataset.id, params.points_from, folder / "all_objects.json")
        kept, errors = _drop_unreadable(json.loads((folder / "all_objects.json").read_text()))
        write_json_atomic(folder / "errors.json", errors)
        write_json_atomic(objects_json, kept)  # last: once it exists, both files are whole
    n_objects = len(json.loads(objects_json.read_text())["annotations"])
    if n_objects == 0:
        raise ApplicationError(
            f"no object left to work on: {len(errors)} image(s) could not be read"
        )
    config = ExitsConfig(
        encoder=params.encoder,
        crop_size=params.crop_size,
        warmup_epochs=params.warmup_epochs,
        epochs=params.epochs,
    )
    # One progress scale over the stages, in passes over the objects: (first pass, passes).
    w, e = params.warmup_epochs, params.epochs
    spans = {
        "warmup": (0, w),
        "retrieval": (w, 1),
        "generator": (w + 1, e),
        "generate": (w + 1 + e, 1),
        "store": (w + 2 + e, 1),
    }
    total = n_objects * (w + e + 3)

    def progress(done: int, stage_total: int, stage: str) -> None:
        first, passes = spans.get(stage, (0, 1))
        fraction = done / stage_total if stage_total else 1.0
        ctx.save_progress(
            min(total, int((first + passes * fraction) * n_objects)), total, {"stage": stage}
        )

    stats = run_exits(
        objects_json,
        folder / "run",
        images_dir=settings.MEDIA_ROOT,
        config=config,
        device=batch_device(),
        progress=progress,
    )
    if not stats.get("completed"):
        raise RuntimeError(f"EXITS stopped before every object had a mask: {stats}")
    created, skipped = _store_masks(
        ctx,
        folder / "run" / "pseudo_masks.json",
        params,
        progress_offset=spans["store"][0] * n_objects,
        total=total,
    )
    model_id = (
        _keep_generator(ctx, dataset, params, folder / "run" / "generator.safetensors", stats)
        if params.keep_generator
        else None
    )
    ctx.save_progress(total, total, {"stage": "done"})
    return {
        "objects": n_objects,
        "instances": created,
        "skipped_images": skipped,
        "failed": len(errors),
        "errors": errors,
        "retrieved_share": stats.get("retrieved_share"),
        "model_id": model_id,
        "objects_per_s": (stats.get("generate") or {}).get("objects_per_s"),
        "config": asdict(config),
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
            bad.append(
                {
                    "image_id": im["id"],
                    "name": names.get(im["id"], ""),
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            )
    dropped = {b["image_id"] for b in bad}
    doc["images"] = [im for im in doc["images"] if im["id"] not in dropped]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] not in dropped]
    return doc, bad[:MAX_ERRORS]


def _store_masks(
    ctx: JobContext, pseudo_json: Path, params: ExitsParams, *, progress_offset: int, total: int
) -> tuple[int, int]:
    tag = f"job-{ctx.job_id}"
    doc = json.loads(pseudo_json.read_text())
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
            image=image, source=METHOD, pseudo=True, model_version=tag
        ).exists():
            skipped += 1
        else:
            with transaction.atomic():
                for ann in anns:
                    if float(ann.get("score") or 0.0) < params.min_score or not ann.get("area"):
                        continue
                    label = ann.get("category_id")
                    instance_create(
                        image=image,
                        mask=ann["segmentation"],
                        source=METHOD,
                        pseudo=True,
                        label_id=label if label in labels else None,
                        model_name=f"{METHOD}/{params.encoder}",
                        model_version=tag,
                        score=float(ann.get("score") or 0.0),
                    )
                    created += 1
        done += len(anns)
        ctx.save_progress(min(total, progress_offset + done), total, {"stage": "store"})
    return created, skipped


def _keep_generator(
    ctx: JobContext, dataset: Dataset, params: ExitsParams, path: Path, stats: dict[str, Any]
) -> int | None:
    from annotation.modelstore.services import model_register_trained

    if not path.exists():
        return None
    metrics = {"objects": stats.get("objects"), "retrieved_share": stats.get("retrieved_share")}
    return model_register_trained(
        project_id=dataset.project_id,
        method=METHOD,
        name=f"EXITS {dataset.name} (job {ctx.job_id})",
        source=path,
        config={"encoder": params.encoder, "crop_size": params.crop_size},
        metrics=metrics,
        job_id=ctx.job_id,
    ).id
