"""The review queue of pseudo labels: what it lists (selectors) and how it changes (services).

Pseudo labels (``PSEUDO_SOURCES``) are created pending and stay apart from human masks until a
reviewer accepts them. The queue is read as plain ``.values()`` rows, ordered by score (best
first), so a page stays cheap with 100,000 instances in the project.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from annotation.common.exceptions import ApplicationError
from annotation.common.realtime import broadcast_on_commit, project_group

from .models import PSEUDO_SOURCES, Instance, ReviewState

# What a review action sets; "needs_fix" sends the mask back to an annotator for correction.
ACTIONS = {
    "accept": ReviewState.ACCEPTED,
    "reject": ReviewState.REJECTED,
    "needs_fix": ReviewState.NEEDS_FIX,
    "reset": ReviewState.PENDING,
}

REVIEW_FIELDS = (
    "id", "image_id", "image__width", "image__height", "label_id", "mask", "bbox", "area",
    "source", "model_name", "score", "review_state", "version",
)
_RENAMES = {"image_id": "image", "image__width": "width", "image__height": "height", "label_id": "label"}


@dataclass(frozen=True)
class ReviewFilters:
    """Which pseudo labels of a project: all fields optional; scores are inclusive bounds."""

    source: str | None = None
    state: str | None = None
    dataset_id: int | None = None
    min_score: float | None = None
    max_score: float | None = None


def _queue(project_id: int, filters: ReviewFilters) -> QuerySet[Instance]:
    sources = sorted(PSEUDO_SOURCES)
    if filters.source is not None:
        if filters.source not in PSEUDO_SOURCES:
            raise ApplicationError(f"{filters.source!r} is not a pseudo-label source ({', '.join(sources)})")
        sources = [filters.source]
    qs = Instance.objects.filter(image__dataset__project_id=project_id, source__in=sources)
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
    """Instances of every source by review state: ``[{source, review_state, count}]``, one query."""
    rows = (
        Instance.objects.filter(image__dataset__project_id=project_id)
        .values("source", "review_state")
        .annotate(count=Count("id"))
        .order_by("source", "review_state")
    )
    return list(rows)


def review_bulk(
    *,
    project_id: int,
    action: str,
    ids: list[int] | None = None,
    filters: ReviewFilters | None = None,
) -> int:
    """Set the review state of many instances in one transaction; returns how many changed.

    Either ``ids`` (instances of this project, any state) or ``filters`` (pending pseudo labels
    matching them; at least one score bound, so that "everything" is never one click away).
    Each changed row's version grows by one, so an editor holding an older copy gets 409.
    One event is pushed after commit.
    """
    if action not in ACTIONS:
        raise ApplicationError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    state = ACTIONS[action]
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
        qs = _queue(project_id, ReviewFilters(
            source=filters.source, state=ReviewState.PENDING, dataset_id=filters.dataset_id,
            min_score=filters.min_score, max_score=filters.max_score,
        ))
    with transaction.atomic():
        # UPDATE ... WHERE id IN (subquery): one statement, however many rows match.
        changed = (
            Instance.objects.filter(pk__in=qs.values("id"))
            .filter(~Q(review_state=state))
            .update(review_state=state, version=F("version") + 1, updated_at=timezone.now())
        )
        if changed:
            broadcast_on_commit(
                project_group(project_id), "instances.reviewed",
                {"review_state": state.value, "count": changed},
            )
    return changed
