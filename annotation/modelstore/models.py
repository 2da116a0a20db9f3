from typing import ClassVar

from django.conf import settings
from django.db import models

from annotation.common.models import BaseModel
from annotation.projects.models import Project


class TrainedModel(BaseModel):
    """A model file a project's workers can load, for a method that declares trained weights
    (``inference.TrainedWeights``: today a DynaMITe network or an EXITS generator).

    ``file`` is relative to MEDIA_ROOT. An uploaded checkpoint is ``importing`` until a batch
    worker has loaded it strictly and rewritten it as safetensors (no pickle is opened again
    after that); a model trained here is ``ready`` when its job ends. ``metrics`` holds the
    evaluation figures of the model (e.g. NCI and mean IoU on held-back images).
    At most one model per (project, method) is the default: the one the annotation page offers.
    """

    class State(models.TextChoices):
        IMPORTING = "importing"
        READY = "ready"
        FAILED = "failed"

    class Origin(models.TextChoices):
        UPLOADED = "uploaded"
        TRAINED = "trained"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trained_models")
    # a registered method's name; which ones take a model file is their metadata, not a list here
    method = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    file = models.CharField(max_length=500, blank=True)
    original_name = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IMPORTING)
    error = models.TextField(blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_default = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar[list[str]] = ["-id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["project", "method"],
                condition=models.Q(is_default=True),
                name="one_default_model_per_method",
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} model {self.pk} ({self.name})"
