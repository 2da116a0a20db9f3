"""What the export tests share: small worlds with masks of every source and review state, a
job run through the engine, and the zip it wrote."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from annotation.common import rle
from annotation.datasets import storage
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance, ReviewState
from annotation.labeling.services import instance_create
from annotation.projects.services import label_create
from tests.factories import make_world


def ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1


def world():
    """make_world plus a second label, overlapping instances and one pending pseudo label.

    Images are 64×48. Labels in order: bird (class 1), cat (class 2).
    """
    w = make_world()
    cat = label_create(project=w.project, name="cat", color="#00ff00")
    img = w.assigned_image
    h, wd = img.height, img.width
    # Overlaps the bird box (2..10, 3..12); created later, so it is on top (higher z_order).
    instance_create(
        image=img,
        mask=rle.encode(ellipse(h, wd, 14, 14, 9, 7)),
        label_id=cat.id,
        author=w.users["owner"],
    )
    instance_create(
        image=img,
        mask=rle.encode(ellipse(h, wd, 45, 30, 12, 10)),
        label_id=w.label.id,
        author=w.users["owner"],
    )
    pseudo = instance_create(
        image=w.other_image,
        mask=rle.encode(ellipse(h, wd, 30, 25, 10, 8)),
        label_id=cat.id,
        source="mis",
        pseudo=True,
        score=0.7,
    )
    return w, cat, pseudo


@dataclass
class Mixed:
    """:func:`mixed_world`'s instances by what they are."""

    world: object
    cat: object
    accepted: list[int]  # manual and imported, review state accepted
    imported: int
    pending: int  # a pending pseudo label with a label
    pending_unlabeled: list[int]  # class-agnostic MIS proposals, pending
    needs_fix: int
    rejected: int


def mixed_world() -> Mixed:
    """:func:`world` (4 accepted manual masks, 1 pending labelled pseudo label) plus an
    imported mask, two unlabelled pending MIS proposals, one mask marked needs fix and one
    rejected pseudo label: every source and review state an export has to sort."""
    w, cat, pseudo = world()
    img, other = w.assigned_image, w.other_image
    h, wd = img.height, img.width
    imported = instance_create(
        image=other, mask=rle.encode(ellipse(h, wd, 50, 12, 8, 6)), label_id=cat.id, source="import"
    )
    unlabeled = [
        instance_create(
            image=im, mask=rle.encode(ellipse(h, wd, cx, 38, 6, 5)), source="mis", pseudo=True
        ).id
        for im, cx in ((img, 20), (other, 12))
    ]
    fix = instance_create(
        image=other, mask=rle.encode(ellipse(h, wd, 40, 40, 5, 4)), label_id=cat.id
    )
    Instance.objects.filter(pk=fix.pk).update(review_state=ReviewState.NEEDS_FIX)
    rejected = instance_create(
        image=img,
        mask=rle.encode(ellipse(h, wd, 55, 8, 5, 4)),
        label_id=w.label.id,
        source="mis",
        pseudo=True,
    )
    Instance.objects.filter(pk=rejected.pk).update(review_state=ReviewState.REJECTED)
    accepted = list(
        Instance.objects.filter(image__dataset=w.dataset, review_state=ReviewState.ACCEPTED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return Mixed(w, cat, accepted, imported.id, pseudo.id, unlabeled, fix.id, rejected.id)


def run(w, **params) -> Job:
    job = Job.objects.create(project=w.project, dataset=w.dataset, kind="export", params=params)
    job_execute(job.id)
    job.refresh_from_db()
    return job


def open_zip(job: Job) -> zipfile.ZipFile:
    assert job.state == "succeeded", job.error
    assert job.result_file == job.result["file"]
    return zipfile.ZipFile(storage.media_path(job.result_file))


def read_coco(zf: zipfile.ZipFile, tmp_path: Path) -> COCO:
    path = tmp_path / "instances.json"
    path.write_bytes(zf.read("annotations/instances_default.json"))
    return COCO(str(path))
