"""Reads of trained models."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import TrainedModel


def models_of(project_id: int) -> QuerySet[TrainedModel]:
    return TrainedModel.objects.filter(project_id=project_id).order_by("-id")


def default_models(project_id: int) -> list[TrainedModel]:
    """The ready default model of each method of the project (at most one per method)."""
    return list(
        TrainedModel.objects.filter(
            project_id=project_id, is_default=True, state=TrainedModel.State.READY
        ).order_by("method")
    )


def model_file(model_id: int) -> tuple[str, str, dict[str, Any]] | None:
    """(method, relative file, config) of a ready model, for a worker; None if unusable."""
    row = (
        TrainedModel.objects.filter(pk=model_id, state=TrainedModel.State.READY)
        .values_list("method", "file", "config")
        .first()
    )
    return row
