from typing import ClassVar

from django.conf import settings
from django.db import models

from annotation.common.models import BaseModel


class Job(BaseModel):
    """Batch work on a dataset, run by a Celery worker in chunks.

    ``done``/``total`` count work items (images, objects, epochs); ``cursor`` is where a
    restarted worker resumes. ``cancel_requested`` is read by the worker between chunks.

    While a job runs, its worker holds a lease: it renews ``lease_until`` (and stamps
    ``heartbeat_at``) at every progress save and from a timer between them. A running job whose
    lease has run out has lost its worker (killed, machine gone): the sweep in
    :mod:`annotation.jobs.services` queues it again to resume from ``cursor`` or, after
    ``attempts`` runs, fails it with the reason.
    """

    class Kind(models.TextChoices):
        """The platform's own kinds. More register with their runner from the app that owns
        their output (``engine.register_runner``, e.g. the pseudo-label jobs of
        ``annotation.segmentation``): a job's kind is any registered one."""

        VERIFY = "verify"  # re-hash, re-decode and re-thumbnail every image of a dataset
        TRAIN = "train"
        EXPORT = "export"
        MODEL_IMPORT = "model_import"  # check an uploaded checkpoint and rewrite it as safetensors

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="jobs")
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=32)  # a registered kind (engine.RUNNERS)
    # The Celery queue it was launched on: a resume goes there too, whatever the sweeping
    # process knows of the kind (a plugin kind, a deployment that routes it elsewhere).
    queue = models.CharField(max_length=200, default="default")
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    cursor = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    result_file = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # hostname of the worker holding the lease
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # runs started (1 + resumes)

    class Meta:
        ordering: ClassVar[list[str]] = ["-id"]
        # the sweep's lookup
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["state", "lease_until"])]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # One running (or waiting) job of a kind per dataset.
            models.UniqueConstraint(
                fields=["dataset", "kind"],
                condition=models.Q(state__in=["queued", "running"]),
                name="one_active_job_per_kind_and_dataset",
            )
        ]

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0
