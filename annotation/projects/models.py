from typing import ClassVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from annotation.common.models import BaseModel


class Role(models.TextChoices):
    OWNER = "owner"
    MANAGER = "manager"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"


# Roles that administer a project: upload, launch jobs, export, manage tasks and members.
ADMIN_ROLES = frozenset({Role.OWNER, Role.MANAGER})
# Roles that see every image of a project (annotators see only their tasks' images).
SEE_ALL_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.REVIEWER})


class Project(BaseModel):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["project", "user"], name="one_role_per_project")
        ]


class LabelClass(BaseModel):
    """A label of a project. ``position`` orders them (and fixes VOC class ids on export)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(
        max_length=7,
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "colour must look like #1f77b4")],
    )
    position = models.PositiveIntegerField()

    class Meta:
        ordering: ClassVar[list[str]] = ["position", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_label_name"),
        ]

    def __str__(self) -> str:
        return self.name
