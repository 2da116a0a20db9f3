from typing import ClassVar

from django.conf import settings
from django.db import models

from annotation.common.models import BaseModel
from annotation.datasets.models import Dataset, Image
from annotation.projects.models import LabelClass, Project


class Task(BaseModel):
    """A set of images assigned to one annotator."""

    class State(models.TextChoices):
        TODO = "todo"
        IN_PROGRESS = "in_progress"
        SUBMITTED = "submitted"
        REVIEWED = "reviewed"
        CLOSED = "closed"  # an owner or manager closed it: kept for the record, no more work

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="tasks")
    name = models.CharField(max_length=200)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.TODO)
    images = models.ManyToManyField(Image, related_name="tasks", blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["id"]


class TaskImageDone(BaseModel):
    """An image its task's annotator finished (marked done, or the task was submitted).

    Progress counts these and the images whose masks a reviewer accepted; imported masks and
    pseudo labels alone never make an image done.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="done_marks")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["task", "image"], name="unique_task_image_done")
        ]


class Source(models.TextChoices):
    """The platform's own sources of a mask. ``Instance.source`` holds one of these or the name
    of the registered method that made the mask (see ``services.check_source``)."""

    MANUAL = "manual"
    IMPORT = "import"


class ReviewState(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NEEDS_FIX = "needs_fix"


class Instance(BaseModel):
    """One object's mask on one image.

    ``mask`` is compressed COCO RLE (``{"size": [h, w], "counts": str}``, column-major as
    pycocotools writes it); ``bbox`` ([x, y, w, h] in pixels) and ``area`` are derived from it by
    the services and never set on their own. ``version`` grows by one on every change; an update
    that names an older version is refused (409).
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="instances")
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="instances"
    )
    mask = models.JSONField()
    bbox = models.JSONField()
    area = models.PositiveIntegerField()
    source = models.CharField(max_length=64, default=Source.MANUAL)  # a Source or a method's name
    # A pseudo label (a batch method's proposal): created pending, listed in the review queue,
    # kept apart from human masks until a person accepts it. Set by whoever creates it.
    pseudo = models.BooleanField(default=False, db_index=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    score = models.FloatField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_state = models.CharField(
        max_length=16, choices=ReviewState.choices, default=ReviewState.PENDING
    )
    # Who must correct the mask while ``review_state`` is needs_fix (null otherwise): set by the
    # review action, cleared when the corrected mask is saved or the state changes again.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    z_order = models.IntegerField(default=0)  # later (higher) wins where masks overlap
    # The mask an object came with (a pseudo label, an import) when its first prompt was
    # logged: brush and eraser strokes apply on top of it until a method prompt replaces it,
    # and undoing them all gives it back.
    base_mask = models.JSONField(null=True, blank=True)
    # The active prompt seqs (oldest first) the stored mask answers: set with every mask a
    # worker saves, and by a mask a person sets by hand. A mask is stale when the object has
    # prompts and this differs from its active ones (a crash between logging a prompt and
    # saving its mask): opening the image recomputes it, and an export refuses it.
    mask_seqs = models.JSONField(null=True, blank=True)
    # The method's ranked masks behind the stored one, ``{"count", "index", "scores",
    # "version"}`` (``compute.choose``), so that Tab still cycles them after a reopen (a
    # worker recomputes the chosen one from the log). Valid only while ``version`` matches the
    # object's: any other write of the mask bumps the version and so retires it.
    candidates = models.JSONField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering: ClassVar[list[str]] = ["z_order", "id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["image", "z_order", "id"]),
            models.Index(fields=["source", "review_state"]),
        ]


class Prompt(BaseModel):
    """One click, scribble or set of extreme points, in the order the person gave them.

    ``seq`` numbers the prompts of one instance from 1; the log is append-only except that undo
    marks a prompt ``undone`` (it stays for the audit trail and replay).
    """

    class Kind(models.TextChoices):
        """The prompt vocabulary: the library's prompt kinds (``inference.PROMPT_KINDS``; a
        method declares which it reads) plus the platform's own brush edits and candidate
        choices (``segmentation.interactive.methods.PLATFORM_KINDS``)."""

        CLICK = "click"
        BOX = "box"
        SCRIBBLE = "scribble"
        EXTREME_POINTS = "extreme_points"
        TEXT = "text"
        EDIT = "edit"  # a manual brush / eraser stroke, applied on top of the method's mask
        # which of the method's ranked masks the object shows ({"index": i}), until its next
        # method prompt (``segmentation.interactive.compute.choice_of``)
        CANDIDATE = "candidate"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="prompts")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField()
    method = models.CharField(max_length=32, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    undone = models.BooleanField(default=False)

    class Meta:
        ordering: ClassVar[list[str]] = ["instance", "seq"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["instance", "seq"], name="unique_prompt_seq")
        ]


# Prompt kinds a method reads (every kind but the platform's own brush edits and choices).
METHOD_KINDS = frozenset(Prompt.Kind.values) - {Prompt.Kind.EDIT, Prompt.Kind.CANDIDATE}
