"""The review queue of pseudo labels: what it lists (selectors) and how it changes (services).

Pseudo labels (``Instance.pseudo``: a method's proposals, flagged by the job that made them) are
created pending and stay apart from human masks until a
reviewer accepts them. The queue is read as plain ``.values()`` rows, ordered by score (best
first), so a page stays cheap with 100,000 instances in the project.

"Needs fix" sends a mask to a person: the instance's ``assignee`` (see :func:`fix_assignees`),
who finds it in their "To fix" list (:func:`fix_rows`) and corrects it on the canvas. The rule
for a corrected mask is :func:`fix_saved_fields`: the first mask saved for it puts it back in
the review queue as pending, still a pseudo label of its source. Every change of review state
pushes ``instances.reviewed`` to the project's group after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from annotation.common.exceptions import ApplicationError
from annotation.common.realtime import broadcast_on_commit, project_group
from annotation.projects.models import Membership, Role

from .models import Instance, ReviewState, Task
from .services import instance_locked_at

# What a review action sets; "needs_fix" sends the mask back to an annotator for correction.
ACTIONS = {
    "accept": ReviewState.ACCEPTED,
    "reject": ReviewState.REJECTED,
    "needs_fix": ReviewState.NEEDS_FIX,
    "reset": ReviewState.PENDING,
}
# Members a mask may be sent to for fixing: those who edit masks.
FIXER_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.ANNOTATOR})

REVIEW_FIELDS = (
    "id",
    "image_id",
    "image__width",
    "image__height",
    "label_id",
    "mask",
    "bbox",
    "area",
    "source",
    "model_name",
    "score",
    "review_state",
    "version",
    "assignee_id",
    "assignee__username",
)
_RENAMES = {
    "image_id": "image",
    "image__width": "width",
    "image__height": "height",
    "label_id": "label",
    "assignee_id": "assignee",
    "assignee__username": "assignee_username",
}


@dataclass(frozen=True)
class ReviewFilters:
    """Which pseudo labels of a project: all fields optional; scores are inclusive bounds.
    ``source``: only those of this source (the method that proposed them)."""

    source: str | None = None
    state: str | None = None
    dataset_id: int | None = None
    min_score: float | None = None
    max_score: float | None = None


def _queue(project_id: int, filters: ReviewFilters) -> QuerySet[Instance]:
    qs = Instance.objects.filter(image__dataset__project_id=project_id, pseudo=True)
    if filters.source is not None:
        qs = qs.filter(source=filters.source)
    if filters.state is not None:
        qs = qs.filter(review_state=filters.state)
    if filters.dataset_id is not None:
        qs = qs.filter(image__dataset_id=filters.dataset_id)
    if filters.min_score is not None:
        qs = qs.filter(score__gte=filters.min_score)
    if filters.max_score is not None:
        qs = qs.filter(score__lte=filters.max_score)
    return qs


def review_rows(project_id: int, filters: ReviewFilters) -> QuerySet:
    """Pseudo labels as dicts, best score first (use with a paginator: it slices the query)."""
    return (
        _queue(project_id, filters)
        .order_by(F("score").desc(nulls_last=True), "id")
        .values(*REVIEW_FIELDS)
    )


def review_row_out(row: dict) -> dict:
    return {_RENAMES.get(k, k): v for k, v in row.items()}


def review_counts(project_id: int) -> list[dict[str, Any]]:
    """Instances of every source by review state: ``[{source, review_state, count, pseudo}]``
    (``pseudo``: how many of them are pseudo labels; the sources with some are those the queue
    can be narrowed to), one query."""
    rows = (
        Instance.objects.filter(image__dataset__project_id=project_id)
        .values("source", "review_state")
        .annotate(count=Count("id"), pseudo_count=Count("id", filter=Q(pseudo=True)))
        .order_by("source", "review_state")
    )
    return [
        {
            "source": r["source"],
            "review_state": r["review_state"],
            "count": r["count"],
            "pseudo": r["pseudo_count"],
        }
        for r in rows
    ]


def _state_of(action: str) -> ReviewState:
    if action not in ACTIONS:
        raise ApplicationError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    return ACTIONS[action]


def fix_assignees(
    *, project_id: int, image_ids: set[int], assignee_id: int | None
) -> dict[int, int]:
    """Who corrects the needs-fix masks of each image: ``{image_id: user_id}``.

    ``assignee_id`` if given: an owner, manager or annotator of the project, and the image must
    be in a task the canvas can open for them (an annotator's own task; any task for owners and
    managers). Without it, per image the one annotator (owner / manager / annotator member) of
    the tasks holding it. Raises :class:`ApplicationError` (400) naming the images that have
    none, or several, so that the reviewer names one. Two queries.
    """
    links = Task.images.through.objects.filter(
        image_id__in=image_ids, task__project_id=project_id, task__assignee__isnull=False
    ).values_list("image_id", "task__assignee_id")
    if assignee_id is not None:
        role = (
            Membership.objects.filter(project_id=project_id, user_id=assignee_id)
            .values_list("role", flat=True)
            .first()
        )
        if role not in FIXER_ROLES:
            raise ApplicationError(
                f"user {assignee_id} does not annotate in this project:"
                " send a fix to an owner, manager or annotator"
            )
        if role == Role.ANNOTATOR:
            held = {image for image, user in links if user == assignee_id}
        else:
            held = set(
                Task.images.through.objects.filter(
                    image_id__in=image_ids, task__project_id=project_id
                ).values_list("image_id", flat=True)
            )
        missing = sorted(image_ids - held)
        if missing:
            raise ApplicationError(
                f"user {assignee_id} has no task with images {missing[:20]}:"
                " add them to one of their tasks first",
                extra={"images": missing[:200]},
            )
        return {image: assignee_id for image in image_ids}
    candidates: dict[int, set[int]] = {image: set() for image in image_ids}
    for image, user in links:
        candidates[image].add(user)
    fixers = set(
        Membership.objects.filter(
            project_id=project_id,
            role__in=FIXER_ROLES,
            user_id__in={u for users in candidates.values() for u in users},
        ).values_list("user_id", flat=True)
    )
    chosen, unclear = {}, []
    for image, users in candidates.items():
        users &= fixers
        if len(users) == 1:
            chosen[image] = users.pop()
        else:
            unclear.append(image)
    if unclear:
        unclear.sort()
        raise ApplicationError(
            f"images {unclear[:20]} have no single annotator (no task holds them, or tasks"
            " of several people do): name an assignee",
            extra={"images": unclear[:200]},
        )
    return chosen


def _push_reviewed(project_id: int, state: str, count: int, ids: list[int] | None = None) -> None:
    """The review page's cue to refresh; ``ids`` for a few instances, none for a bulk change."""
    payload: dict[str, Any] = {"review_state": str(state), "count": count}
    if ids is not None:
        payload["ids"] = ids
    broadcast_on_commit(project_group(project_id), "instances.reviewed", payload)


def instance_review(
    *, instance_id: int, action: str, expected_version: int, assignee_id: int | None = None
) -> Instance:
    """Review one instance. ``needs_fix`` sends it to ``assignee_id`` (or the default of
    :func:`fix_assignees`); any other action clears the assignee, and naming one is refused.
    A stale ``expected_version`` gets :class:`Conflict` (409), as for every edit."""
    state = _state_of(action)
    if assignee_id is not None and state != ReviewState.NEEDS_FIX:
        raise ApplicationError("an assignee goes with needs_fix only")
    with transaction.atomic():
        instance = instance_locked_at(instance_id, expected_version)
        project_id = instance.image.dataset.project_id
        assignee = None
        if state == ReviewState.NEEDS_FIX:
            assignee = fix_assignees(
                project_id=project_id, image_ids={instance.image_id}, assignee_id=assignee_id
            )[instance.image_id]
        instance.review_state, instance.assignee_id = state, assignee
        instance.version = F("version") + 1
        instance.save(update_fields=["review_state", "assignee", "version", "updated_at"])
        instance.refresh_from_db(fields=["version"])
        broadcast_on_commit(
            project_group(project_id),
            "instance.updated",
            {
                "instance_id": instance.id,
                "image_id": instance.image_id,
                "version": instance.version,
            },
        )
        _push_reviewed(project_id, state, 1, [instance.id])
    return instance


def review_bulk(
    *,
    project_id: int,
    action: str,
    ids: list[int] | None = None,
    filters: ReviewFilters | None = None,
    assignee_id: int | None = None,
) -> int:
    """Set the review state of many instances in one transaction; returns how many changed.

    Either ``ids`` (instances of this project, any state) or ``filters`` (pending pseudo labels
    matching them; at least one score bound, so that "everything" is never one click away).
    ``needs_fix`` sends each to ``assignee_id`` or its image's default annotator (see
    :func:`fix_assignees`: all or nothing, a 400 names the images without one); other actions
    clear the assignee. Each changed row's version grows by one, so an editor holding an older
    copy gets 409. One event is pushed after commit.
    """
    state = _state_of(action)
    if assignee_id is not None and state != ReviewState.NEEDS_FIX:
        raise ApplicationError("an assignee goes with needs_fix only")
    if (ids is None) == (filters is None):
        raise ApplicationError("give either ids or a score threshold")
    if ids is not None:
        wanted = set(ids)
        qs = Instance.objects.filter(image__dataset__project_id=project_id, pk__in=wanted)
        found = set(qs.values_list("id", flat=True))
        missing = sorted(wanted - found)
        if missing:
            raise ApplicationError(f"instances {missing[:20]} are not in this project")
    else:
        assert filters is not None
        if filters.min_score is None and filters.max_score is None:
            raise ApplicationError("a bulk review by filter needs min_score or max_score")
        qs = _queue(
            project_id,
            ReviewFilters(
                source=filters.source,
                state=ReviewState.PENDING,
                dataset_id=filters.dataset_id,
                min_score=filters.min_score,
                max_score=filters.max_score,
            ),
        )
    with transaction.atomic():
        # UPDATE ... WHERE id IN (subquery): one statement, however many rows match.
        todo = Instance.objects.filter(pk__in=qs.values("id")).filter(~Q(review_state=state))
        now = timezone.now()
        if state == ReviewState.NEEDS_FIX:
            images = set(todo.values_list("image_id", flat=True).distinct())
            by_user: dict[int, list[int]] = {}
            for image, user in fix_assignees(
                project_id=project_id, image_ids=images, assignee_id=assignee_id
            ).items():
                by_user.setdefault(user, []).append(image)
            changed = sum(
                todo.filter(image_id__in=group).update(
                    review_state=state, assignee_id=user, version=F("version") + 1, updated_at=now
                )
                for user, group in by_user.items()
            )
        else:
            changed = todo.update(
                review_state=state, assignee_id=None, version=F("version") + 1, updated_at=now
            )
        if changed:
            _push_reviewed(project_id, state, changed)
    return changed


# -- needs fix: the assignee's side ----------------------------------------------------------
FIX_FIELDS = (
    "id",
    "image_id",
    "image__original_name",
    "label_id",
    "source",
    "model_name",
    "score",
    "bbox",
    "version",
    "updated_at",
)
_FIX_RENAMES = {"image_id": "image", "image__original_name": "image_name", "label_id": "label"}


def fix_rows(*, user: Any, project_id: int) -> QuerySet:
    """The needs-fix instances of a project assigned to ``user``, by image (use with a
    paginator; :func:`fix_rows_out` adds the task to open each in)."""
    return (
        Instance.objects.filter(
            image__dataset__project_id=project_id,
            review_state=ReviewState.NEEDS_FIX,
            assignee_id=user.id,
        )
        .order_by("image_id", "id")
        .values(*FIX_FIELDS)
    )


def fix_rows_out(rows: list[dict], *, user: Any, project_id: int, sees_all: bool) -> list[dict]:
    """Rows in the API's shape, each with ``task``: a task holding the image that the user can
    open on the canvas (their own first; any for owners and managers), or null. One query."""
    images = {row["image_id"] for row in rows}
    links = Task.images.through.objects.filter(image_id__in=images, task__project_id=project_id)
    if not sees_all:
        links = links.filter(task__assignee_id=user.id)
    task_of: dict[int, tuple[bool, int]] = {}
    for image, task, assignee in links.values_list("image_id", "task_id", "task__assignee_id"):
        rank = (assignee != user.id, task)  # own tasks first, then the oldest
        if image not in task_of or rank < task_of[image]:
            task_of[image] = rank
    out = []
    for row in rows:
        item = {_FIX_RENAMES.get(k, k): v for k, v in row.items()}
        item["task"] = task_of[row["image_id"]][1] if row["image_id"] in task_of else None
        out.append(item)
    return out


def fix_saved_fields(instance: Instance, author_id: int | None) -> dict[str, Any] | None:
    """The rule for a mask saved on the canvas over a pseudo label still under review.

    A needs-fix instance whose corrected mask is saved goes back to the review queue: review
    state pending, assignee cleared, author = the person who corrected it; it keeps its pseudo
    source and model name (it is still the model's proposal, now corrected, and a reviewer
    decides on it again). A pending pseudo label edited on the canvas likewise stays a pending
    pseudo label of its source, so further prompts do not move it out of the queue. Returns
    the fields to write with the new mask, or None for any other instance (which becomes a
    mask of the method, as before).
    """
    if not instance.pseudo and instance.review_state != ReviewState.NEEDS_FIX:
        return None
    if instance.review_state == ReviewState.NEEDS_FIX:
        return {
            "source": instance.source,
            "pseudo": instance.pseudo,
            "model_name": instance.model_name,
            "review_state": ReviewState.PENDING,
            "assignee": None,
            "author_id": author_id if author_id is not None else instance.author_id,
        }
    if instance.review_state == ReviewState.PENDING:
        return {
            "source": instance.source,
            "pseudo": instance.pseudo,
            "model_name": instance.model_name,
        }
    return None


def visible_on_canvas(user: Any) -> Q:
    """Instances the canvas shows ``user``: all but the needs-fix masks sent to someone else."""
    return ~(
        Q(review_state=ReviewState.NEEDS_FIX) & Q(assignee__isnull=False) & ~Q(assignee_id=user.id)
    )
