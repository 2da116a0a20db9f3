"""Creating tasks by picking images, as the project page's "New task" form does.

An owner or manager names a dataset and a selection of its images, in the dataset's order
(by id, the order the API lists them in): all of them, a range of positions (1-based, both
ends included), or the ones no open task holds yet. The selection becomes one task, or is split
into N tasks (one per chosen annotator, or N unassigned ones) whose image sets are disjoint,
contiguous in the dataset's order and balanced (sizes differ by at most one), named
"<name> 1/N" … "<name> N/N".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset, Image
from annotation.projects.models import Membership, Project

from .models import Task

MAX_TASK_IMAGES = 10_000  # images in one task: the canvas walks them, the list counts them
MAX_SPLIT = 50  # tasks one request may create

SELECT_ALL = "all"
SELECT_RANGE = "range"
SELECT_UNASSIGNED = "unassigned"
SELECTIONS = (SELECT_ALL, SELECT_RANGE, SELECT_UNASSIGNED)

# A task in one of these states still claims its images; a closed one gives them back.
OPEN_STATES = tuple(s for s in Task.State.values if s != Task.State.CLOSED)


@dataclass(frozen=True)
class Selection:
    """Which images of the dataset: ``kind`` is one of :data:`SELECTIONS`; ``first``/``last``
    are 1-based positions in the dataset's order, both included, for a range."""

    kind: str
    first: int | None = None
    last: int | None = None


def check_task_size(count: int) -> None:
    if count > MAX_TASK_IMAGES:
        raise ApplicationError(
            f"a task holds at most {MAX_TASK_IMAGES:,} images, not {count:,}:"
            " pick a range, or split the images between several tasks"
        )


def selected_image_ids(dataset: Dataset, selection: Selection) -> list[int]:
    """The ids the selection names, in the dataset's order; 400 on a malformed selection."""
    images = Image.objects.filter(dataset=dataset).order_by("id")
    if selection.kind == SELECT_ALL:
        return list(images.values_list("id", flat=True))
    if selection.kind == SELECT_UNASSIGNED:
        claimed = Task.images.through.objects.filter(
            task__dataset=dataset, task__state__in=OPEN_STATES
        ).values("image_id")
        return list(images.exclude(id__in=claimed).values_list("id", flat=True))
    if selection.kind == SELECT_RANGE:
        first, last = selection.first, selection.last
        if first is None or last is None:
            raise ApplicationError("a range needs first and last (positions, from 1)")
        if first < 1 or last < first:
            raise ApplicationError(f"the range {first}–{last} is empty or starts before 1")
        total = images.count()
        if first > total:
            raise ApplicationError(
                f"the dataset has {total} images: the range cannot start at {first}"
            )
        return list(images.values_list("id", flat=True)[first - 1 : min(last, total)])
    raise ApplicationError(f"unknown selection {selection.kind!r} ({', '.join(SELECTIONS)})")


def split_evenly(ids: list[int], parts: int) -> list[list[int]]:
    """``ids`` cut into ``parts`` contiguous runs whose lengths differ by at most one (the
    longer runs first)."""
    size, extra = divmod(len(ids), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(ids[start:end])
        start = end
    return out


def _check_assignees(project: Project, assignee_ids: list[int]) -> None:
    if len(set(assignee_ids)) != len(assignee_ids):
        raise ApplicationError("each annotator may be chosen once")
    members = set(
        Membership.objects.filter(project=project, user_id__in=assignee_ids).values_list(
            "user_id", flat=True
        )
    )
    strangers = [i for i in assignee_ids if i not in members]
    if strangers:
        raise ApplicationError(f"users {strangers[:20]} are not members of this project")


def _plan(parts: int | None, assignee_ids: list[int]) -> tuple[int, list[int | None]]:
    """(number of tasks, the assignee of each)."""
    if len(assignee_ids) > MAX_SPLIT:
        raise ApplicationError(f"at most {MAX_SPLIT} annotators in one split")
    if assignee_ids:
        if parts is not None and parts != len(assignee_ids):
            raise ApplicationError(
                f"{parts} parts but {len(assignee_ids)} annotators: give one annotator per part"
            )
        return len(assignee_ids), list(assignee_ids)
    parts = 1 if parts is None else parts
    if not 1 <= parts <= MAX_SPLIT:
        raise ApplicationError(f"split into 1 to {MAX_SPLIT} tasks, not {parts}")
    return parts, [None] * parts


def tasks_create_from_selection(
    *,
    project: Project,
    dataset: Dataset,
    name: str,
    selection: Selection,
    assignee_ids: list[int] | None = None,
    parts: int | None = None,
) -> list[Task]:
    """Create one task per part of the selected images; all or nothing.

    ``assignee_ids``: one annotator per task (their number is the number of tasks), or none
    (``parts`` unassigned tasks, default 1). 400 when nothing is selected, when there are more
    tasks than images, or when a task would hold more than :data:`MAX_TASK_IMAGES` images.
    """
    if dataset.project_id != project.pk:
        raise ApplicationError(f"dataset {dataset.pk} is not in this project")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("a task needs a name")
    assignee_ids = list(assignee_ids or [])
    count, assignees = _plan(parts, assignee_ids)
    _check_assignees(project, assignee_ids)
    with transaction.atomic():
        # One creation at a time per dataset: two "unassigned" picks must not take the same
        # images.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        ids = selected_image_ids(dataset, selection)
        if not ids:
            raise ApplicationError("no images match this selection")
        if count > len(ids):
            raise ApplicationError(f"{len(ids)} images cannot be split into {count} tasks")
        chunks = split_evenly(ids, count)
        check_task_size(len(chunks[0]))
        tasks = []
        for i, (chunk, assignee) in enumerate(zip(chunks, assignees, strict=True)):
            suffix = f" {i + 1}/{count}" if count > 1 else ""
            task = Task.objects.create(
                project=project,
                dataset=dataset,
                name=name[: 200 - len(suffix)] + suffix,
                assignee_id=assignee,
            )
            Task.images.through.objects.bulk_create(
                [Task.images.through(task_id=task.pk, image_id=image_id) for image_id in chunk]
            )
            tasks.append(task)
    return tasks
