"""Proposal jobs: every image of a dataset gets a method's region proposals, as pseudo labels.

One kind per method that declares a ``proposals`` batch job (``inference.jobs``). The method's
entry builds its model once and proposes per image; each proposal becomes an ``Instance`` with
``source`` = the method, ``pseudo`` set, review state pending, its ``score``, ``model_name`` =
what made it (e.g. the backbone) and ``model_version`` = ``job-<id>``. One image is one chunk:
its instances are written in one transaction, then the progress is saved (which also honours a
cancel). A redelivered task resumes after the cursor, and an image that already holds this
job's proposals is skipped, so a worker that died between the two writes duplicates nothing.
An image that fails is listed in the result with its error; the others go on.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from annotation.common import rle
from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset, Image
from annotation.jobs.engine import JobContext
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create
from annotation.projects.models import LabelClass

from .per_image import Tally, each_image
from .runs import Kind, register_kinds


def _extra(info: Any) -> tuple[Any, ...]:
    """The platform's parameters of a proposals job."""
    from inference.jobs import Param

    return (
        Param(
            "skip_existing",
            "Skip images that have proposals",
            "bool",
            True,
            help="leave out images that already hold this method's proposals from the same"
            " model (an earlier job)",
        ),
        Param(
            "label_id",
            "Label",
            "id",
            None,
            refers="label",
            choices=(("", "none (class-agnostic)"),),
            help="a label of the project given to every proposal (exports skip unlabelled masks)",
        ),
    )


def _validate(kind: Kind, mine: dict[str, Any], own: dict[str, Any], dataset: Dataset) -> None:
    label_id = own["label_id"]
    if (
        label_id is not None
        and not LabelClass.objects.filter(pk=label_id, project_id=dataset.project_id).exists()
    ):
        raise ApplicationError(f"label {label_id} is not a label of this project")


def _run(ctx: JobContext, kind: Kind) -> dict[str, Any]:
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    mine, own = kind.parse(ctx.params)  # again: a job may be resumed after a change
    _validate(kind, mine, own, dataset)
    tag = f"job-{ctx.job_id}"

    def skip(image: Image, model_name: str) -> bool:
        proposals_of = Instance.objects.filter(image=image, source=kind.method, pseudo=True)
        mine_here = proposals_of.filter(model_version=tag).exists()
        return mine_here or (
            own["skip_existing"] and proposals_of.filter(model_name=model_name).exists()
        )

    def process(maker: Any, image: Image, rgb: Any, tally: Tally) -> None:
        proposals = maker.propose(rgb, image.id)
        with transaction.atomic():
            for mask, score in proposals:
                instance_create(
                    image=image,
                    mask=rle.encode(mask),
                    source=kind.method,
                    pseudo=True,
                    label_id=own["label_id"],
                    model_name=tally.model_name,
                    model_version=tag,
                    score=score,
                )
        tally.counts["created"] += len(proposals)

    tally = each_image(ctx, kind, mine, skip=skip, process=process)
    return {
        "images": tally.total,
        "instances": tally.counts["created"],
        "skipped": tally.counts["skipped"],
        "failed": tally.counts["failed"],
        "errors": tally.errors,
        "model_name": tally.model_name,
    }


KINDS = register_kinds("proposals", _run, _validate, _extra)
