"""Text-mask jobs: every image of a dataset gets a mask per instance of each chosen label, found
from the label's name ("find every <label>"), as labelled pseudo labels.

One kind per method that declares a ``text_masks`` batch job (``inference.jobs``). The launcher
picks labels of the job's project (``label_ids``; every one must be of the project, checked at
launch and again on every run); their names are the texts. The method's entry loads its model
once; per image, ``find`` gives (text, mask, score) and each mask becomes an ``Instance`` with
the label of its text, ``source`` = the method, ``pseudo`` set (review state pending, so it
waits in the review queue), its ``score``, ``model_name`` = the checkpoint and
``model_version`` = ``job-<id>``. At most :data:`MAX_PER_IMAGE` masks are kept per image, the
best scores. One image is one chunk: its instances are written in one transaction, then the
progress is saved (which also honours a cancel). A redelivered task resumes after the cursor,
and an image that already holds this job's masks is skipped, so a worker that died between the
two writes duplicates nothing. With ``skip_existing`` (the default) an image where this method
already stored masks of every chosen label from the same checkpoint (an earlier job, or Find all
on the canvas) is skipped too. An image that fails is listed in the result with its error; the
others go on. A model that cannot load (weights missing) fails the job with its message.
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

MAX_LABELS = 100  # labels one job asks for (each is one text per image)
MAX_PER_IMAGE = 500  # masks stored per image, all labels together: the best scores


def _extra(info: Any) -> tuple[Any, ...]:
    """The platform's parameters of a text-masks job: which labels to find."""
    from inference.jobs import Param

    return (
        Param(
            "skip_existing",
            "Skip images already found",
            "bool",
            True,
            help="leave out images that already hold this method's masks of every chosen label"
            " from the same checkpoint (an earlier job, or Find all on the canvas)",
        ),
        Param(
            "label_ids",
            "Labels",
            "ids",
            (),
            minimum=1,
            maximum=MAX_LABELS,
            refers="label",
            help="the labels to find; each label's name is what the model looks for",
        ),
    )


def _labels(own: dict[str, Any], dataset: Dataset) -> dict[str, int]:
    """Label name → id of the chosen labels, in the order chosen; ApplicationError when one is
    not a label of the dataset's project (another project's reads as a missing one)."""
    ids = list(own["label_ids"])
    if not ids:  # the default: a launch that names none
        raise ApplicationError("choose at least one label to find (label_ids)")
    rows = dict(
        LabelClass.objects.filter(pk__in=ids, project_id=dataset.project_id).values_list(
            "pk", "name"
        )
    )
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ApplicationError(f"label {missing[0]} is not a label of this project")
    return {rows[i]: i for i in ids}  # names are unique in a project


def _validate(kind: Kind, mine: dict[str, Any], own: dict[str, Any], dataset: Dataset) -> None:
    _labels(own, dataset)


def _best(found: list[tuple[str, Any, float]]) -> list[tuple[str, Any, float]]:
    """``found`` cut to the :data:`MAX_PER_IMAGE` best scores, in its own order otherwise."""
    if len(found) <= MAX_PER_IMAGE:
        return found
    ranked = sorted(range(len(found)), key=lambda i: -found[i][2])  # stable: ties keep order
    keep = set(ranked[:MAX_PER_IMAGE])
    return [f for i, f in enumerate(found) if i in keep]


def _run(ctx: JobContext, kind: Kind) -> dict[str, Any]:
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    mine, own = kind.parse(ctx.params)  # again: a job may be resumed after a change
    labels = _labels(own, dataset)
    tag = f"job-{ctx.job_id}"

    def skip(image: Image, model_name: str) -> bool:
        found = Instance.objects.filter(image=image, source=kind.method, pseudo=True)
        if found.filter(model_version=tag).exists():
            return True  # this job's own masks: a redelivered task resumes past them
        if not own["skip_existing"]:
            return False
        # an earlier run found every chosen label here already (a label it found nothing of
        # is asked again: the image is only done when each label has its masks)
        labelled = set(
            found.filter(model_name=model_name, label_id__in=labels.values()).values_list(
                "label_id", flat=True
            )
        )
        return labelled >= set(labels.values())

    def process(finder: Any, image: Image, rgb: Any, tally: Tally) -> None:
        found = finder.find(rgb, list(labels), image.id)
        kept = _best(found)
        with transaction.atomic():
            for text, mask, score in kept:
                instance_create(
                    image=image,
                    mask=rle.encode(mask),
                    source=kind.method,
                    pseudo=True,
                    label_id=labels[text],
                    model_name=tally.model_name,
                    model_version=tag,
                    score=score,
                )
        tally.counts["created"] += len(kept)
        tally.counts["dropped"] += len(found) - len(kept)
        per_label = tally.figures.setdefault("per_label", {})
        for text, _, _ in kept:
            key = str(labels[text])
            per_label[key] = per_label.get(key, 0) + 1

    tally = each_image(
        ctx, kind, mine, skip=skip, process=process, counters=("dropped",), figures=("per_label",)
    )
    return {
        "images": tally.total,
        "instances": tally.counts["created"],
        "per_label": tally.figures.get("per_label", {}),  # label id → masks stored
        "dropped": tally.counts["dropped"],  # over MAX_PER_IMAGE in an image
        "skipped": tally.counts["skipped"],
        "failed": tally.counts["failed"],
        "errors": tally.errors,
        "model_name": tally.model_name,
    }


KINDS = register_kinds("text_masks", _run, _validate, _extra)
