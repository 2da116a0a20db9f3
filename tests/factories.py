"""Building blocks for tests: a project with one member of every role, images, masks."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage

from annotation.common import rle
from annotation.datasets.models import Dataset, Image
from annotation.datasets.services import Upload, dataset_create, dataset_upload
from annotation.jobs.models import Job
from annotation.labeling.models import Instance, Task
from annotation.labeling.services import instance_create, task_create
from annotation.projects.models import LabelClass, Membership, Project, Role
from annotation.projects.services import label_create, project_create
from annotation.users.models import User


def make_image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, fmt)
    return out.getvalue()


def add_images(dataset: Dataset, count: int, start_seed: int = 0) -> list[Image]:
    uploads = [
        Upload(f"img{start_seed + i}.png", io.BytesIO(make_image_bytes(seed=start_seed + i)))
        for i in range(count)
    ]
    report = dataset_upload(dataset=dataset, uploads=uploads)
    ids = [f.image_id for f in report.files if f.status == "accepted"]
    assert len(ids) == count, report.as_dict()
    return list(Image.objects.filter(id__in=ids).order_by("id"))


def box_mask(image: Image, x0: int, y0: int, x1: int, y1: int) -> dict[str, Any]:
    mask = np.zeros((image.height, image.width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return rle.encode(mask)


@dataclass
class World:
    """A project with an owner, a manager, a reviewer, two annotators and an outsider.

    ``annotator`` has a task with ``assigned_image``; ``other_image`` is in no task of theirs.
    """

    project: Project
    dataset: Dataset
    label: LabelClass
    users: dict[str, User]
    assigned_image: Image
    other_image: Image
    task: Task
    instance: Instance
    other_instance: Instance


def make_world(password: str = "pw-12345678") -> World:
    users = {
        name: User.objects.create_user(username=name, password=password)
        for name in ("owner", "manager", "reviewer", "annotator", "annotator2", "outsider")
    }
    project = project_create(name="Birds", owner=users["owner"])
    for name, role in (
        ("manager", Role.MANAGER),
        ("reviewer", Role.REVIEWER),
        ("annotator", Role.ANNOTATOR),
        ("annotator2", Role.ANNOTATOR),
    ):
        Membership.objects.create(project=project, user=users[name], role=role)
    label = label_create(project=project, name="bird", color="#ff0000")
    dataset = dataset_create(project=project, name="set A")
    assigned, other = add_images(dataset, 2)
    task = task_create(
        project=project,
        dataset=dataset,
        name="t1",
        assignee_id=users["annotator"].id,
        image_ids=[assigned.id],
    )
    task_create(
        project=project,
        dataset=dataset,
        name="t2",
        assignee_id=users["annotator2"].id,
        image_ids=[other.id],
    )
    instance = instance_create(
        image=assigned,
        mask=box_mask(assigned, 2, 3, 10, 12),
        label_id=label.id,
        author=users["owner"],
    )
    other_instance = instance_create(
        image=other, mask=box_mask(other, 5, 5, 9, 9), label_id=label.id, author=users["owner"]
    )
    return World(project, dataset, label, users, assigned, other, task, instance, other_instance)


def wait_for_job(job_id: int, states: set[str], timeout: float = 60) -> Job:
    """Poll until the job reaches one of ``states`` (a real worker runs it); fail if it is
    still elsewhere after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stuck in {Job.objects.get(pk=job_id).state}")
