"""The annotator's side of a task: which images are done, the mark that says so, and
adopting a proposal shown on the canvas.

The rule (``selectors.image_done``): an image is done for a task when its annotator marked it
done (a ``TaskImageDone`` row) or a reviewer accepted a pseudo label on it. Imported masks and
pending proposals never count, so a new task over an imported dataset starts at 0 / N.
Submitting a task does not mark its images: the page asks first, naming the images left.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from annotation.common.exceptions import ApplicationError, NotFound
from annotation.common.realtime import broadcast_on_commit, project_group
from annotation.projects.models import Role

from . import permissions
from .models import Instance, ReviewState, Task, TaskImageDone
from .selectors import task_images_progress
from .services import instance_locked_at


def task_progress(task: Task) -> dict[str, Any]:
    """``{task_id, state, images_total, images_done, images: [{id, name, done}]}``."""
    images = task_images_progress(task)
    return {
        "task_id": task.id,
        "state": task.state,
        "images_total": len(images),
        "images_done": sum(1 for i in images if i["done"]),
        "images": images,
    }


def task_image_done_set(*, task: Task, role: Role, image_id: int, user: Any, done: bool) -> None:
    """Mark one image of ``task`` done (or not done any more). Idempotent: marking twice keeps
    one row and its first author. A closed task takes no marks (its record is final)."""
    permissions.require(role, permissions.MARK_DONE)
    if task.state == Task.State.CLOSED:
        raise ApplicationError(f"task {task.id} is closed: its images cannot change")
    if not task.images.filter(pk=image_id).exists():
        raise NotFound(f"image {image_id} is not in task {task.id}")
    with transaction.atomic():
        if done:
            TaskImageDone.objects.get_or_create(task=task, image_id=image_id, defaults={"by": user})
        else:
            TaskImageDone.objects.filter(task=task, image_id=image_id).delete()


def proposal_adopt(*, instance_id: int, expected_version: int, user: Any) -> Instance:
    """An annotator takes a pending proposal (a pseudo label) as their own mask, as it is:
    it leaves the review queue as a person's accepted mask, author ``user``. Anything but a
    pending pseudo label is refused, and a stale ``expected_version`` gets 409."""
    with transaction.atomic():
        instance = instance_locked_at(instance_id, expected_version)
        if not (instance.pseudo and instance.review_state == ReviewState.PENDING):
            raise ApplicationError(f"instance {instance_id} is not a pending proposal")
        instance.pseudo = False
        instance.review_state = ReviewState.ACCEPTED
        instance.author = user
        instance.version += 1
        instance.save(update_fields=["pseudo", "review_state", "author", "version", "updated_at"])
        broadcast_on_commit(
            project_group(instance.image.dataset.project_id),
            "instance.updated",
            {
                "instance_id": instance.id,
                "image_id": instance.image_id,
                "version": instance.version,
            },
        )
    return instance
