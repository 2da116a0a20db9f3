"""Whether a stored mask answers its object's prompt log as it stands (reads only).

A prompt is committed before its mask is computed, so a crash in between (a killed worker, a
lost queue message, Redis restarted without the revision counters) leaves an object whose mask
answers older prompts: ``Instance.mask_seqs`` (the active seqs the mask was computed from)
differs from the active seqs in the log. Such a mask is recomputed when its image is opened
(:func:`annotation.labeling.live.open_image`) and refused by exports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, QuerySet

from .models import Instance


def active_seqs(prompts: Iterable[Any]) -> list[int]:
    """The seqs of the prompts not undone, oldest first (``Prompt`` rows or value dicts)."""

    def get(p: Any, key: str) -> Any:
        return p[key] if isinstance(p, dict) else getattr(p, key)

    return sorted(get(p, "seq") for p in prompts if not get(p, "undone"))


def is_stale(mask_seqs: list[int] | None, has_prompts: bool, active: list[int]) -> bool:
    """An object without prompts (an import, a pseudo label, a drawn mask) is never stale; one
    with prompts is when no mask answered them yet or its mask answers other ones."""
    if not has_prompts:
        return False
    return mask_seqs is None or list(mask_seqs) != active


def stale_instances(instances: QuerySet[Instance]) -> list[dict[str, Any]]:
    """``{"id", "image_id"}`` of the stale instances among ``instances``, in id order (one
    query: the active seqs are aggregated in PostgreSQL)."""
    rows = (
        instances.annotate(
            n_prompts=Count("prompts"),
            active=ArrayAgg(
                "prompts__seq",
                filter=Q(prompts__undone=False),
                order_by="prompts__seq",
                default=None,
            ),
        )
        .filter(n_prompts__gt=0)
        .order_by("id")
        .values("id", "image_id", "mask_seqs", "active")
    )
    return [
        {"id": r["id"], "image_id": r["image_id"]}
        for r in rows
        if is_stale(r["mask_seqs"], True, list(r["active"] or []))
    ]
