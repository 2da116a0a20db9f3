"""Writes for labeling: masks (instances), the prompt log, tasks and reviews."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max

from annotation.common import rle
from annotation.common.exceptions import ApplicationError, Conflict, Forbidden
from annotation.common.realtime import broadcast_on_commit, project_group
from annotation.datasets.models import Dataset, Image
from annotation.projects.models import ADMIN_ROLES, LabelClass, Membership, Project, Role
from annotation.segmentation.interactive import methods

from .assignments import check_task_size
from .models import METHOD_KINDS, Instance, Prompt, ReviewState, Source, Task
from .prompts import validate_payload


def _mask_for(image: Image, segmentation: Any) -> tuple[dict[str, Any], int, list[float]]:
    try:
        stored = rle.from_segmentation(segmentation, image.height, image.width)
    except rle.MaskFormatError as exc:
        raise ApplicationError(f"mask: {exc}") from exc
    area, bbox = rle.area_and_bbox(stored)
    return stored, area, bbox


def _check_label(image: Image, label_id: int | None) -> LabelClass | None:
    if label_id is None:
        return None
    project_id = image.dataset.project_id
    label = LabelClass.objects.filter(pk=label_id, project_id=project_id).first()
    if label is None:
        raise ApplicationError(f"label {label_id} is not a label of this project")
    return label


def _push_instance(instance: Instance, event: str) -> None:
    broadcast_on_commit(
        project_group(instance.image.dataset.project_id),
        event,
        {"instance_id": instance.id, "image_id": instance.image_id, "version": instance.version},
    )


SOURCE_MAX = Instance._meta.get_field("source").max_length


def check_source(source: str) -> str:
    """``source`` if an instance may hold it: the platform's own (manual, import) or the name of
    a registered method; else :class:`ApplicationError` (400) saying what is accepted."""
    if source in Source.values:
        return source
    if not isinstance(source, str) or len(source) > SOURCE_MAX:
        raise ApplicationError(f"a source is a name of at most {SOURCE_MAX} characters")
    if methods.info(source) is not None:
        return source
    known = ", ".join([*Source.values, *sorted(m["name"] for m in methods.catalog())])
    raise ApplicationError(f"unknown source {source!r}: a mask comes from one of {known}")


def instance_create(
    *,
    image: Image,
    mask: Any,
    label_id: int | None = None,
    source: str = Source.MANUAL,
    model_name: str = "",
    model_version: str = "",
    score: float | None = None,
    author: Any = None,
    pseudo: bool = False,
) -> Instance:
    """Store a new mask; bbox and area come from the mask, z-order puts it on top.

    ``source``: manual, import or the name of a registered method (anything else is refused).
    ``pseudo``: a method's proposal (a batch job's), which starts pending in the review queue;
    every other mask starts accepted."""
    check_source(source)
    stored, area, bbox = _mask_for(image, mask)
    label = _check_label(image, label_id)
    review = ReviewState.PENDING if pseudo else ReviewState.ACCEPTED
    with transaction.atomic():
        top = Instance.objects.filter(image=image).aggregate(m=Max("z_order"))["m"]
        instance = Instance.objects.create(
            image=image,
            label=label,
            mask=stored,
            area=area,
            bbox=bbox,
            source=source,
            pseudo=pseudo,
            model_name=model_name,
            model_version=model_version,
            score=score,
            author=author,
            review_state=review,
            z_order=(top + 1) if top is not None else 0,
        )
        _push_instance(instance, "instance.created")
    return instance


def instance_locked_at(instance_id: int, expected_version: int) -> Instance:
    """The instance, row-locked for the caller's transaction, if it is still at
    ``expected_version``; otherwise :class:`Conflict` (409): the caller edited a stale copy
    and must reload, never overwrite. Every versioned write of an instance starts here."""
    instance = (
        Instance.objects.select_for_update().select_related("image__dataset").get(pk=instance_id)
    )
    if instance.version != expected_version:
        raise Conflict(
            f"instance {instance_id} is at version {instance.version}, not {expected_version}:"
            " someone else changed it; reload and retry",
            extra={"current_version": instance.version},
        )
    return instance


def instance_update(
    *, instance_id: int, expected_version: int, changes: dict[str, Any], author: Any = None
) -> Instance:
    """Apply ``changes`` (mask, label_id, review_state, z_order, score) if nobody got there first.

    Raises :class:`Conflict` (409) when ``expected_version`` is not the stored version: the
    caller edited a stale copy and must reload, never overwrite.
    """
    allowed = {"mask", "label_id", "review_state", "z_order", "score"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError(f"cannot change {sorted(unknown)}")
    with transaction.atomic():
        instance = instance_locked_at(instance_id, expected_version)
        if "mask" in changes:
            instance.mask, instance.area, instance.bbox = _mask_for(instance.image, changes["mask"])
            # a mask set by hand answers the prompts as they stand: a reopen must not replace it
            instance.mask_seqs = list(
                Prompt.objects.filter(instance_id=instance_id, undone=False)
                .order_by("seq")
                .values_list("seq", flat=True)
            )
        if "label_id" in changes:
            instance.label = _check_label(instance.image, changes["label_id"])
        if "review_state" in changes:
            if changes["review_state"] not in ReviewState.values:
                raise ApplicationError(f"unknown review state {changes['review_state']!r}")
            instance.review_state = changes["review_state"]
        if "z_order" in changes:
            if not isinstance(changes["z_order"], int):
                raise ApplicationError("z_order must be an integer")
            instance.z_order = changes["z_order"]
        if "score" in changes:
            instance.score = changes["score"]
        instance.version = F("version") + 1
        instance.save()
        instance.refresh_from_db(fields=["version"])
        _push_instance(instance, "instance.updated")
    return instance


def instance_delete(*, instance: Instance, expected_version: int | None = None) -> None:
    with transaction.atomic():
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        if expected_version is not None and locked.version != expected_version:
            raise Conflict(
                f"instance {instance.pk} is at version {locked.version}, not {expected_version}",
                extra={"current_version": locked.version},
            )
        _push_instance(instance, "instance.deleted")
        locked.delete()


class TooManyPrompts(ApplicationError):
    status_code = 409
    code = "too_many_prompts"


def _check_prompt_cap(instance: Instance, kind: str) -> None:
    """Refuse a prompt past the object's cap. A worker replays every active prompt on each
    request, so the cap bounds one model run: at most MAX_PROMPTS_PER_OBJECT prompts a method
    reads, and four times as many in all (brush edits and candidate choices are cheaper, but
    replayed too). Called with the object's row locked, so concurrent prompts cannot
    overshoot."""
    cap = settings.MASKWRIGHT["MAX_PROMPTS_PER_OBJECT"]
    kinds = list(
        Prompt.objects.filter(instance=instance, undone=False).values_list("kind", flat=True)
    )
    model = sum(k in METHOD_KINDS for k in kinds)
    if (kind in METHOD_KINDS and model >= cap) or len(kinds) >= 4 * cap:
        raise TooManyPrompts(
            f"object {instance.pk} has {len(kinds)} active prompts ({model} for the method),"
            " the most allowed; undo some, or start a new object",
            extra={"max_prompts": cap},
        )


def _check_candidate(instance: Instance, kind: str) -> None:
    """Refuse a candidate choice for an object that has no method prompt: there is no
    prediction to choose from, and a replay would ignore it."""
    if kind != Prompt.Kind.CANDIDATE:
        return
    if not Prompt.objects.filter(instance=instance, undone=False, kind__in=METHOD_KINDS).exists():
        raise ApplicationError(
            f"object {instance.pk} has no prediction to choose a candidate of: prompt it first"
        )


def prompt_append(
    *, instance: Instance, kind: str, payload: Any, method: str = "", author: Any = None
) -> Prompt:
    """Log one prompt with the next sequence number of its instance.

    The instance row is locked so that two prompts sent at once get distinct, gapless numbers.
    Redo history ends here, as in every editor: prompts undone before this one are dropped.
    """
    image = instance.image
    clean = validate_payload(kind, payload, image.width, image.height)
    with transaction.atomic():
        locked = Instance.objects.select_for_update().filter(pk=instance.pk).first()
        Prompt.objects.filter(instance=instance, undone=True).delete()
        _check_prompt_cap(instance, kind)
        _check_candidate(instance, kind)
        last = Prompt.objects.filter(instance=instance).aggregate(m=Max("seq"))["m"] or 0
        if last == 0 and locked is not None and locked.area > 0 and locked.base_mask is None:
            # the first prompt on a mask made elsewhere: keep that mask as the edits' base
            locked.base_mask = locked.mask
            locked.save(update_fields=["base_mask", "updated_at"])
        return Prompt.objects.create(
            instance=instance,
            seq=last + 1,
            kind=kind,
            payload=clean,
            method=method[:32],
            author=author,
        )


def prompt_undo(*, instance: Instance) -> Prompt | None:
    """Mark the newest active prompt undone; returns it, or None when nothing is left to undo."""
    with transaction.atomic():
        Instance.objects.select_for_update().filter(pk=instance.pk).first()
        prompt = Prompt.objects.filter(instance=instance, undone=False).order_by("-seq").first()
        if prompt is not None:
            prompt.undone = True
            prompt.save(update_fields=["undone", "updated_at"])
        return prompt


def prompt_redo(*, instance: Instance) -> Prompt | None:
    """Bring back the oldest undone prompt; None when there is nothing to redo."""
    with transaction.atomic():
        Instance.objects.select_for_update().filter(pk=instance.pk).first()
        prompt = Prompt.objects.filter(instance=instance, undone=True).order_by("seq").first()
        if prompt is not None:
            prompt.undone = False
            prompt.save(update_fields=["undone", "updated_at"])
        return prompt


def _check_assignee(project: Project, assignee_id: int | None) -> None:
    if (
        assignee_id is not None
        and not Membership.objects.filter(project=project, user_id=assignee_id).exists()
    ):
        raise ApplicationError(f"user {assignee_id} is not a member of this project")


def _check_images(dataset: Dataset, image_ids: list[int]) -> list[int]:
    ids = sorted(set(image_ids))
    check_task_size(len(ids))
    found = set(Image.objects.filter(dataset=dataset, pk__in=ids).values_list("id", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApplicationError(f"images {missing[:20]} are not in dataset {dataset.pk}")
    return ids


def task_create(
    *, project: Project, dataset: Dataset, name: str, assignee_id: int | None, image_ids: list[int]
) -> Task:
    if dataset.project_id != project.pk:
        raise ApplicationError(f"dataset {dataset.pk} is not in this project")
    _check_assignee(project, assignee_id)
    ids = _check_images(dataset, image_ids)
    with transaction.atomic():
        task = Task.objects.create(
            project=project, dataset=dataset, name=name[:200], assignee_id=assignee_id
        )
        task.images.set(ids)
    return task


def task_update(*, task: Task, changes: dict[str, Any], role: Role | None = None) -> Task:
    """Rename, reassign, move to another state or change the images of a task.

    ``role``: the asker's (None for the system). A closed task is kept for the record: only
    an owner or manager changes it, reopening it first; its annotator's state moves are
    refused (403), so closing it ends the work on it.
    """
    if task.state == Task.State.CLOSED and role is not None and role not in ADMIN_ROLES and changes:
        raise Forbidden("this task is closed; an owner or manager can reopen it")
    with transaction.atomic():
        if "name" in changes:
            task.name = str(changes["name"])[:200]
        if "assignee_id" in changes:
            _check_assignee(task.project, changes["assignee_id"])
            task.assignee_id = changes["assignee_id"]
        if "state" in changes:
            if changes["state"] not in Task.State.values:
                raise ApplicationError(f"unknown task state {changes['state']!r}")
            task.state = changes["state"]
        task.save()
        if "image_ids" in changes:
            task.images.set(_check_images(task.dataset, changes["image_ids"]))
    return task


def task_delete(*, task: Task) -> None:
    """Delete the assignment; the images and their masks stay."""
    task.delete()
