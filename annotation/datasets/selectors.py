"""Reads for datasets and images, with the access rules of ``projects.access`` applied."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from annotation.common.exceptions import NotFound
from annotation.projects.access import (
    open_task_images,
    restrict_images,
    role_for_object,
    role_of,
    sees_all_images,
)
from annotation.projects.models import Role

from .models import Dataset, Image


def dataset_for(user: Any, dataset_id: int) -> tuple[Dataset, Role]:
    dataset = Dataset.objects.filter(pk=dataset_id).select_related("project").first()
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset, role_for_object(user, dataset.project_id, f"dataset {dataset_id} not found")


def _visible_count(user: Any, role: Role) -> Count:
    """Count of a dataset's images the user can open (annotators: their tasks' images)."""
    if sees_all_images(role):
        return Count("images")
    return Count("images", filter=open_task_images(user, "images__"), distinct=True)


def dataset_list(user: Any, project_id: int, role: Role) -> QuerySet[Dataset]:
    return (
        Dataset.objects.filter(project_id=project_id)
        .annotate(image_count=_visible_count(user, role))
        .order_by("id")
    )


def dataset_with_count(user: Any, dataset: Dataset, role: Role) -> Dataset:
    return Dataset.objects.annotate(image_count=_visible_count(user, role)).get(pk=dataset.pk)


def image_list(user: Any, dataset: Dataset, role: Role) -> QuerySet[Image]:
    return restrict_images(Image.objects.filter(dataset=dataset), user, role).order_by("id")


def image_for(user: Any, image_id: int) -> tuple[Image, Role]:
    """The image and the user's role; 404 unless the user may see it.

    Two queries for owners, managers and reviewers, three for annotators (their task check).
    """
    image = Image.objects.filter(pk=image_id).select_related("dataset").first()
    role = role_of(user, image.dataset.project_id) if image is not None else None
    if role is None or not (
        sees_all_images(role)
        or restrict_images(Image.objects.filter(pk=image_id), user, role).exists()
    ):
        raise NotFound(f"image {image_id} not found")
    return image, role
