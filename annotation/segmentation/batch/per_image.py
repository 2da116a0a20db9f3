"""The image-by-image loop of the batch jobs that write pseudo labels (``proposals``,
``text_masks``): one image is one chunk, resumed from the job's cursor.

The runner says what an image is (:func:`each_image`'s ``skip`` and ``process``); the loop does
the rest: images in id order after the cursor, the method's entry built once (only when an
image is left to do), an image that fails listed in the result and the others go on, and the
progress saved after every image (which also honours a cancel), with the counts and the
runner's own figures kept in the cursor so that a redelivered task goes on where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annotation.datasets.models import Image
from annotation.datasets.storage import read_rgb
from annotation.jobs.engine import JobContext

from .runs import MAX_ERRORS, Kind, batch_device, failure

log = logging.getLogger(__name__)

COUNTS = ("done", "created", "skipped", "failed")


@dataclass
class Tally:
    """What a job did so far (restored from the cursor): ``counts`` (:data:`COUNTS` and the
    runner's own), ``errors`` (at most ``MAX_ERRORS``), the model's name and ``figures``, the
    runner's other running totals (JSON-safe)."""

    total: int
    counts: dict[str, int]
    errors: list[dict[str, Any]]
    model_name: str
    figures: dict[str, Any] = field(default_factory=dict)


def each_image(
    ctx: JobContext,
    kind: Kind,
    mine: dict[str, Any],
    *,
    skip: Callable[[Image, str], bool],
    process: Callable[[Any, Image, Any, Tally], None],
    counters: tuple[str, ...] = (),
    figures: tuple[str, ...] = (),
) -> Tally:
    """Run ``process(entry, image, rgb, tally)`` on every image of the job's dataset not yet
    done, where ``entry`` is the method's job entry built with ``mine`` and ``rgb`` the image
    (H×W×3 uint8). ``process`` stores the image's results in one transaction and adds to the
    tally; ``skip(image, model_name)`` says the image holds results already (it is counted
    skipped). ``counters`` and ``figures`` name the runner's own counts and totals kept in
    the cursor. Returns the tally once every image is done."""
    images = Image.objects.filter(dataset_id=ctx.dataset_id).order_by("id")
    cursor = ctx.cursor
    last_id = int(cursor.get("last_id", 0))
    todo = images.filter(id__gt=last_id)
    entry = kind.job.entry()(mine, batch_device()) if todo.exists() else None
    tally = Tally(
        total=images.count(),
        counts={k: int(cursor.get(k, 0)) for k in (*COUNTS, *counters)},
        errors=list(cursor.get("errors", [])),
        model_name=entry.model_name if entry is not None else cursor.get("model_name", ""),
        figures={k: cursor[k] for k in figures if k in cursor},
    )
    for image in todo.iterator(chunk_size=100):
        if skip(image, tally.model_name):
            tally.counts["skipped"] += 1
        else:
            try:
                process(entry, image, read_rgb(image.file), tally)
            except Exception as exc:  # noqa: BLE001 (one bad image must not end the job)
                log.warning(
                    "%s job %s: image %s failed: %s", kind.job.kind, ctx.job_id, image.id, exc
                )
                tally.counts["failed"] += 1
                if len(tally.errors) < MAX_ERRORS:
                    tally.errors.append(failure(image.id, image.original_name, exc))
        last_id = image.id
        tally.counts["done"] += 1
        ctx.save_progress(
            tally.counts["done"],
            tally.total,
            {
                "last_id": last_id,
                **tally.counts,
                **tally.figures,
                "errors": tally.errors,
                "model_name": tally.model_name,
            },
        )
    if tally.total == 0:
        ctx.save_progress(0, 0, {"last_id": 0, "done": 0})
    return tally
