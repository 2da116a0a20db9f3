"""Export a dataset to a zip (COCO instances, Pascal VOC or YOLO segmentation), as a job of
kind ``export``.

Which masks go in: the filter picks by review state (:data:`.records.FILTERS`: ``accepted``,
or ``all`` = every mask not rejected, pending pseudo labels included), whatever made the mask.
A mask without a label has no class to be written under: it is skipped and counted
(``no_label``) unless the caller names a label to export such masks under. Every mask left
out is counted by reason in the result (``skipped``, with a few image ids each), and so is
every mask the filter left out, by review state (``left_out``).

The zip streams: images are read a chunk at a time (``CHUNK`` image rows, then their instances
in one query), each entry goes into the zip as soon as it is ready, and what must come last in
one file (COCO's ``images``/``annotations`` arrays, VOC's image lists) is spooled to temporary
files on disk. Memory therefore depends on the largest chunk, not on the dataset.

The zip is written to ``<final>.part`` and renamed into place only after the last entry; a
cancelled or failed export deletes its ``.part`` and never sets ``Job.result_file``. A worker
that died mid-export and got the task again starts the zip over (a half-written zip cannot be
appended to safely); ``ctx.cursor`` only records how far it got, for the progress bar.

An export refuses to start while any mask it would ship is stale (older than its object's
prompts, :mod:`annotation.labeling.freshness`): the job fails naming those instances and their
images, which recompute their masks when opened. Recomputing here instead would need the
interactive models on the CPU export worker and minutes per image; skipping them would ship a
dataset with objects silently missing.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet

from annotation.common.exceptions import ApplicationError
from annotation.datasets import storage
from annotation.datasets.models import Dataset, Image
from annotation.labeling.freshness import stale_instances
from annotation.labeling.models import Instance, ReviewState
from annotation.projects.models import LabelClass

from .coco import CocoWriter
from .records import (
    SKIP_REASONS,
    Category,
    ExportImage,
    ExportInstance,
    ExportParams,
    ExportStats,
    Writer,
)
from .voc import VocWriter
from .yolo import YoloWriter

WRITERS: dict[str, type[CocoWriter | VocWriter | YoloWriter]] = {
    "coco": CocoWriter,
    "voc": VocWriter,
    "yolo": YoloWriter,
}

# Images per database round trip and per progress report. 100 images of 10 instances are
# ~1,000 RLE strings in memory at once: small, and few enough commits to keep progress cheap.
CHUNK = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(image_id: int, original_name: str) -> str:
    """A file stem that cannot leave the zip root or clash: ``"<id>_<name>"``.

    Path separators (both kinds), ``..``, spaces and anything outside ``[A-Za-z0-9_.-]`` are
    dropped or replaced; the id prefix keeps two uploads named alike apart.
    """
    base = original_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = _UNSAFE.sub("_", stem).strip("._-")[:80]
    return f"{image_id}_{stem}" if stem else str(image_id)


def categories_for(project_id: int) -> list[Category]:
    labels = LabelClass.objects.filter(project_id=project_id).order_by("position", "id")
    return [Category(i + 1, lab.id, lab.name) for i, lab in enumerate(labels.only("id", "name"))]


def filtered(instances: QuerySet[Instance], flt: str) -> QuerySet[Instance]:
    """``instances`` that the filter ``flt`` ships (see :data:`.records.FILTERS`)."""
    if flt == "accepted":
        return instances.filter(review_state=ReviewState.ACCEPTED)
    return instances.exclude(review_state=ReviewState.REJECTED)


def left_out_by_filter(dataset_id: int, flt: str) -> dict[str, int]:
    """How many masks of the dataset the filter leaves out, by review state."""
    everything = Instance.objects.filter(image__dataset_id=dataset_id)
    kept = filtered(everything, flt).values("id")
    rows = (
        everything.exclude(id__in=kept)
        .values("review_state")
        .annotate(n=Count("id"))
        .order_by("review_state")
    )
    return {row["review_state"]: row["n"] for row in rows}


def iter_chunks(
    dataset_id: int,
    categories: list[Category],
    params: ExportParams,
    stats: ExportStats,
) -> Iterator[list[tuple[ExportImage, list[ExportInstance]]]]:
    """Images of the dataset in id order, ``CHUNK`` at a time, each with its instances sorted
    by ``(z_order, id)`` (paint order: later wins). Instances without a label go under the
    category of ``params.unlabeled_label_id``, or are skipped (``no_label``) without one."""
    by_label = {c.label_id: c for c in categories}
    unlabeled = by_label.get(params.unlabeled_label_id) if params.unlabeled_label_id else None
    if params.unlabeled_label_id and unlabeled is None:  # the engine checked it; a race
        raise ApplicationError(f"label {params.unlabeled_label_id} is not a label of this project")
    last_id = 0
    while True:
        rows = list(
            Image.objects.filter(dataset_id=dataset_id, id__gt=last_id)
            .order_by("id")
            .values("id", "file", "file_sha256", "original_name", "width", "height", "format")[
                :CHUNK
            ]
        )
        if not rows:
            return
        last_id = rows[-1]["id"]
        instances = filtered(
            Instance.objects.filter(image_id__in=[r["id"] for r in rows]), params.filter
        )
        per_image: dict[int, list[ExportInstance]] = {r["id"]: [] for r in rows}
        for inst in instances.order_by("image_id", "z_order", "id").values(
            "id", "image_id", "label_id", "mask", "z_order"
        ):
            category = by_label.get(inst["label_id"]) if inst["label_id"] else unlabeled
            if category is None:
                stats.skip("no_label", inst["image_id"])
                continue
            per_image[inst["image_id"]].append(
                ExportInstance(inst["id"], category, inst["mask"], inst["z_order"])
            )
        yield [
            (
                ExportImage(
                    id=r["id"],
                    file=r["file"],
                    file_sha256=r["file_sha256"],
                    stem=safe_stem(r["id"], r["original_name"]),
                    ext=r["file"].rsplit(".", 1)[-1].lower(),
                    format=r["format"],
                    width=r["width"],
                    height=r["height"],
                ),
                per_image[r["id"]],
            )
            for r in rows
        ]


class StaleMasks(ApplicationError):
    """Some masks to export do not answer their prompts yet."""


def check_fresh(dataset_id: int, params: ExportParams) -> None:
    """Raise :class:`StaleMasks` naming the stale instances the export would include."""
    instances = filtered(Instance.objects.filter(image__dataset_id=dataset_id), params.filter)
    if params.unlabeled_label_id is None:
        instances = instances.filter(label__isnull=False)
    stale = stale_instances(instances)
    if stale:
        shown = stale[:20]
        more = f" and {len(stale) - len(shown)} more" if len(stale) > len(shown) else ""
        images = sorted({s["image_id"] for s in stale})
        raise StaleMasks(
            f"{len(stale)} mask(s) are older than their prompts (a crash came between a prompt "
            f"and its mask): instances {', '.join(str(s['id']) for s in shown)}{more} on images "
            f"{', '.join(map(str, images[:20]))}{' …' if len(images) > 20 else ''}. "
            f"Open those images to recompute the masks, then export again.",
            extra={"stale_instances": [s["id"] for s in stale], "images": images},
        )


def export_relpath(project_id: int, dataset_id: int, job_id: int, fmt: str) -> str:
    return f"exports/{project_id}/dataset{dataset_id}-job{job_id}-{fmt}.zip"


def export_write(
    *,
    dataset: Dataset,
    params: ExportParams,
    relpath: str,
    progress: Callable[[int, int, dict[str, Any]], None],
) -> dict[str, Any]:
    """Write the export zip to the media store as ``relpath``; returns a summary for
    ``Job.result``. The zip is built in a local scratch file, then stored (a rename on the
    local store, an upload to a bucket).

    ``progress(done, total, cursor)`` is called after every chunk and may raise (the jobs
    engine raises ``Cancelled``): the partial file is then removed and the exception passes on.
    """
    check_fresh(dataset.id, params)
    scratch = Path(settings.MEDIA_ROOT) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    fd, part_name = tempfile.mkstemp(dir=scratch, prefix="export-", suffix=".zip.part")
    os.close(fd)
    part = Path(part_name)
    categories = categories_for(dataset.project_id)
    total = Image.objects.filter(dataset_id=dataset.id).count()
    stats = ExportStats()
    done = 0
    try:
        with zipfile.ZipFile(
            part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        ) as zf:
            writer: Writer = WRITERS[params.format](zf, categories, params, stats, scratch)
            for chunk in iter_chunks(dataset.id, categories, params, stats):
                for image, instances in chunk:
                    writer.add(image, instances)
                    stats.images += 1
                done += len(chunk)
                progress(done, max(total, done), {"last_image_id": chunk[-1][0].id, "done": done})
            writer.finish()
        size = part.stat().st_size
        storage.move_into_place(part, relpath)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return {
        "file": relpath,
        "format": params.format,
        "masks": {"coco": params.masks, "voc": "png", "yolo": "polygon"}[params.format],
        "filter": params.filter,
        "unlabeled_label_id": params.unlabeled_label_id,
        "images": stats.images,
        "annotations": stats.annotations,
        "skipped": stats.skipped,
        "skipped_why": {why: SKIP_REASONS.get(why, why) for why in stats.skipped},
        "skipped_images": stats.skipped_images,
        "parts_dropped": stats.parts_dropped,
        "left_out": left_out_by_filter(dataset.id, params.filter),
        "bytes": size,
    }
