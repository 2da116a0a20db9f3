"""Reads for labeling with the access rules applied."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from annotation.common.exceptions import NotFound
from annotation.datasets.models import Image
from annotation.datasets.selectors import image_for
from annotation.projects.access import restrict_images, role_for_object, role_of, sees_all_images
from annotation.projects.models import Role

from .models import Instance, Prompt, ReviewState, Task, TaskImageDone

# The instance list is the hottest read (the canvas loads it per image): rows come as plain
# dicts, skipping model instances and DRF field objects, which cost ~20 µs per field per row.
INSTANCE_FIELDS = (
    "id",
    "image_id",
    "label_id",
    "mask",
    "bbox",
    "area",
    "source",
    "model_name",
    "model_version",
    "score",
    "author_id",
    "review_state",
    "z_order",
    "version",
    "created_at",
    "updated_at",
)
_RENAMES = {"image_id": "image", "label_id": "label", "author_id": "author"}


def instance_list_for_image(image_id: int) -> QuerySet[Instance]:
    return Instance.objects.filter(image_id=image_id).order_by("z_order", "id")


def instance_rows_for_image(image_id: int) -> QuerySet:
    """The image's instances as dicts in the API's shape (use with a paginator)."""
    return instance_list_for_image(image_id).values(*INSTANCE_FIELDS)


def instance_row_out(row: dict) -> dict:
    return {_RENAMES.get(k, k): v for k, v in row.items()}


def instance_for(user: Any, instance_id: int) -> tuple[Instance, Role]:
    image_id = Instance.objects.filter(pk=instance_id).values_list("image_id", flat=True).first()
    if image_id is None:
        raise NotFound(f"instance {instance_id} not found")
    try:
        _image, role = image_for(user, image_id)
    except NotFound:
        raise NotFound(f"instance {instance_id} not found") from None
    instance = Instance.objects.select_related("image__dataset").get(pk=instance_id)
    return instance, role


def prompt_list(instance: Instance) -> QuerySet[Prompt]:
    return Prompt.objects.filter(instance=instance).order_by("seq")


# An image is done for a task when its annotator finished it (a ``TaskImageDone`` mark: marked
# done on the canvas) or when a reviewer accepted a pseudo label on it. "Accepted" alone cannot
# tell: imports and manual masks are created accepted (``services.instance_create``), and the
# review queue acts only on pseudo labels, so a reviewer's acceptance is an accepted pseudo
# label. Imports and pending proposals alone never make an image done.
_REVIEWER_ACCEPTED = Q(pseudo=True, review_state=ReviewState.ACCEPTED)


def image_done(task_ref: Any, image_ref: Any) -> Q:
    """The done rule as a filter on rows that name a task and an image (``OuterRef``s or ids)."""
    marked = TaskImageDone.objects.filter(task_id=task_ref, image_id=image_ref)
    accepted = Instance.objects.filter(_REVIEWER_ACCEPTED, image_id=image_ref)
    return Q(Exists(marked)) | Q(Exists(accepted))


def _task_image_count(done: bool) -> Subquery:
    """Per task, its images (or those done) as one correlated aggregate: no query per task."""
    links = Task.images.through.objects.filter(task_id=OuterRef("pk"))
    if done:
        links = links.filter(image_done(OuterRef("task_id"), OuterRef("image_id")))
    counted = links.order_by().values("task_id").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def task_images_progress(task: Task) -> list[dict[str, Any]]:
    """The task's images, oldest first, as ``{id, name, done}`` (one query)."""
    rows = (
        task.images.order_by("id")
        .annotate(done=ExpressionWrapper(image_done(task.id, OuterRef("pk")), BooleanField()))
        .values("id", "original_name", "done")
    )
    return [{"id": r["id"], "name": r["original_name"], "done": r["done"]} for r in rows]


def task_list(user: Any, project_id: int, role: Role) -> QuerySet[Task]:
    """The project's tasks (an annotator's own only), each with ``images_total``/``images_done``."""
    qs = (
        Task.objects.filter(project_id=project_id)
        .select_related("assignee")
        .annotate(images_total=_task_image_count(False), images_done=_task_image_count(True))
    )
    if not sees_all_images(role):
        qs = qs.filter(assignee_id=user.id)
    return qs.order_by("id")


def task_for(user: Any, task_id: int) -> tuple[Task, Role]:
    task = Task.objects.filter(pk=task_id).select_related("project", "dataset").first()
    if task is None:
        raise NotFound(f"task {task_id} not found")
    role = role_for_object(user, task.project_id, f"task {task_id} not found")
    if not sees_all_images(role) and task.assignee_id != user.id:
        raise NotFound(f"task {task_id} not found")
    return task, role


def project_event_for(user: Any, project_id: int, event: str, payload: dict) -> dict | None:
    """A project event's payload as ``user`` may receive it, or None to hold it back.

    The role is read per event (a member removed or demoted meanwhile gets what the new role
    allows). Owners, managers and reviewers see every image and get every event. An annotator
    gets only what concerns the images of their tasks: an event naming such an image, a
    review of instances on them (the ids narrowed to those), and the bare cue that masks were
    sent back to them for fixing. Job and model events (pages they cannot open) and anything
    about other images are held back.
    """
    role = role_of(user, project_id)
    if role is None:
        return None
    if sees_all_images(role):
        return payload
    if "image_id" in payload:
        image = Image.objects.filter(pk=payload["image_id"], dataset__project_id=project_id)
        return payload if restrict_images(image, user, role).exists() else None
    if event == "instances.reviewed" and payload.get("ids"):
        mine = restrict_images(
            Instance.objects.filter(pk__in=payload["ids"]), user, role, prefix="image__"
        )
        ids = sorted(mine.values_list("id", flat=True))
        return {**payload, "ids": ids, "count": len(ids)} if ids else None
    if event == "instances.reviewed" and payload.get("review_state") == ReviewState.NEEDS_FIX:
        # a bulk review names no instances: say only that some were sent to this user
        sent = Instance.objects.filter(
            image__dataset__project_id=project_id,
            assignee_id=user.id,
            review_state=ReviewState.NEEDS_FIX,
        ).exists()
        return {"review_state": ReviewState.NEEDS_FIX} if sent else None
    return None
