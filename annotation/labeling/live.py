"""Services behind the annotation socket (``ws/annotate/``): open an image, log prompts and
queue their masks. What the worker reads and saves is in :mod:`.saves`.

Every prompt is committed to the log before any work is queued, so a crash at any later point
loses nothing: reopening the image replays the log. Each change to an object's prompts bumps its
revision; a worker computes the object from the log as it stands (revision r), and saves the
mask only if no mask of revision r or newer is saved already, so one mask may answer several
queued prompts and an older one never overwrites a newer one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from annotation.common.exceptions import ApplicationError, NotFound
from annotation.datasets.models import Image
from annotation.datasets.selectors import image_for
from annotation.projects.models import LabelClass
from annotation.segmentation.interactive import dispatch, methods
from annotation.segmentation.interactive.request import MaskRequest

from . import permissions, review
from .freshness import active_seqs, is_stale
from .models import METHOD_KINDS, Instance, Prompt, Source, Task
from .prefetching import cancel_queued, prefetch
from .selectors import task_for
from .services import instance_create, instance_delete, prompt_append, prompt_redo, prompt_undo
from .session import Session, may, object_out, prompts_of, require_open, role_now

EMPTY_MASK_SOURCE = Source.MANUAL
# ``opened`` carries the objects' masks up to this many characters of RLE; the others follow
# it, one ``object`` message each (``masks_follow``). One reply with every mask of a big image
# was 56 MB for 300 noisy masks on a 10000×10000 image (measured): encoding and compressing
# it ran on the event loop that serves every socket of the process.
OPENED_MASK_CHARS = 2_000_000
FIND_ALL_KEYS = ("available", "method", "why")  # of methods.text_finding, in ``opened``


def offered_methods(project_id: int | None = None) -> list[dict[str, Any]]:
    """What the annotation page offers, from the methods' registered metadata: the methods that
    run as built, then the project's default trained models (their "backbone" is
    ``model-<id>``, which the worker resolves)."""
    trained: list[tuple[str, int, str]] = []
    if project_id is not None:
        from annotation.modelstore.selectors import default_models

        trained = [(model.method, model.id, model.name) for model in default_models(project_id)]
    return methods.offered(trained)


def _method_ok(
    method: str,
    backbone: str | None,
    project_id: int | None = None,
    offered: list[dict[str, Any]] | None = None,
) -> tuple[str, str]:
    """(method, backbone) if the project offers them; ``offered``: :func:`offered_methods`
    already read."""
    offered = offered_methods(project_id) if offered is None else offered
    for m in offered:
        if m["name"] == method:
            chosen = backbone or m["backbones"][0]
            if chosen not in m["backbones"]:
                raise ApplicationError(
                    f"method {method} has no backbone {chosen!r} here ({', '.join(m['backbones'])})"
                )
            return method, chosen
    names = ", ".join(m["name"] for m in offered)
    raise ApplicationError(f"unknown method {method!r}; this project offers {names}")


def open_image(
    session: Session, image_id: int, task_id: int | None, method: str | None, backbone: str | None
) -> dict[str, Any]:
    """Check access, remember the image in ``session``, start its features on a worker and
    return the ``opened`` payload (objects with their active prompts and masks).

    The objects are every instance of the image except needs-fix masks sent to someone else:
    a mask sent to this user for fixing is one of them, editable like the rest."""
    image, _ = image_for(session.user, image_id)
    task = None
    if task_id is not None:
        task, _ = task_for(session.user, task_id)
        if not task.images.filter(pk=image_id).exists():
            raise NotFound(f"image {image_id} is not in task {task_id}")
    project_id = image.dataset.project_id
    offered = offered_methods(project_id)
    if not offered:
        raise ApplicationError("no segmentation method is available here")
    chosen_method, chosen_backbone = _method_ok(
        method or session.method or offered[0]["name"],
        backbone if method else (backbone or session.backbone or None),
        project_id,
        offered,
    )
    session.image_id = image.id
    session.width, session.height = image.width, image.height
    session.project_id = image.dataset.project_id
    session.method, session.backbone = chosen_method, chosen_backbone
    session.sent.clear()
    session.seqs.clear()
    session.prefetch_pending = None  # another image's: it runs (or was called off) as it is
    session.finding = None  # another image's: its answer is dropped (the objects are stored)
    instances = list(
        Instance.objects.filter(review.visible_on_canvas(session.user), image=image).order_by(
            "z_order", "id"
        )
    )
    prompts = prompts_of([i.id for i in instances])
    labels = LabelClass.objects.filter(project_id=session.project_id).order_by("position", "id")
    prefetch(session, session.image_id)
    _recompute_stale(session, instances, prompts, offered)
    session.next_image_id = _next_image(task, image_id)
    objects, later, budget = [], [], OPENED_MASK_CHARS
    for i in instances:
        size = len(i.mask.get("counts", "")) if i.area else 0  # its crop's RLE is about as long
        fits = size <= budget
        if fits:
            budget -= size
        objects.append(object_out(i, prompts[i.id], with_mask=fits))
        if not fits:
            objects[-1].update(box=None, rle=None)
            later.append(i.id)
    return {
        "image": {
            "id": image.id,
            "width": image.width,
            "height": image.height,
            "file_url": f"/api/images/{image.id}/file",
            "name": image.original_name,
        },
        "task_id": task_id,
        "next_image_id": session.next_image_id,
        "objects": objects,
        "masks_follow": later,
        "method": chosen_method,
        "backbone": chosen_backbone,
        "methods": offered,
        # methods left out for want of a checkpoint on any worker, with why (shown disabled)
        "unavailable": methods.unavailable(offered),
        "labels": [{"id": lab.id, "name": lab.name, "color": lab.color} for lab in labels],
        # "Find all" (every instance of a label, from its name): whether a method that finds
        # by text can run here, which, and why not (finding.py)
        "find_all": {k: v for k, v in methods.text_finding().items() if k in FIND_ALL_KEYS},
    }


def object_mask(session: Session, instance_id: int) -> dict[str, Any] | None:
    """An object of the open image with its mask, for one that ``opened`` left to follow it;
    ``None`` if it is gone meanwhile."""
    try:
        instance = object_of(session, instance_id)
    except NotFound:
        return None
    return object_out(
        instance, list(Prompt.objects.filter(instance=instance).order_by("seq")), with_mask=True
    )


def _recompute_stale(
    session: Session,
    instances: list[Instance],
    prompts: dict[int, list[Prompt]],
    offered: list[dict[str, Any]],
) -> None:
    """Queue the masks that do not answer their prompt log (:mod:`.freshness`): a crash came
    between a prompt and its mask. Each is computed with the method of its newest prompt and
    reaches this socket as a plain mask reply."""
    for instance in instances:
        logged = prompts[instance.id]
        if not is_stale(instance.mask_seqs, bool(logged), active_seqs(logged)):
            continue
        methods_used = [
            p.method for p in logged if not p.undone and p.kind in METHOD_KINDS and p.method
        ]
        method = methods_used[-1] if methods_used else session.method
        used = (
            instance.model_name.split("/", 1)[1]
            if instance.model_name.startswith(f"{method}/")
            else None
        )
        try:
            method, backbone = _method_ok(method, used, session.project_id, offered)
        except ApplicationError:
            try:  # the backbone it used is gone: the method's default
                method, backbone = _method_ok(method, None, session.project_id, offered)
            except ApplicationError:
                continue  # the method is not offered any more: the export keeps refusing it
        rev = dispatch.bump_revision(instance.id)
        worker = dispatch.choose_worker(session.image_id, method, backbone, session.worker)
        request = replace(
            _request(session, instance.id, rev, 0, time.time()), method=method, backbone=backbone
        )
        dispatch.send_predict(request, worker)


def _next_image(task: Task | None, image_id: int) -> int | None:
    if task is None:
        return None
    return task.images.filter(pk__gt=image_id).order_by("id").values_list("id", flat=True).first()


def set_method(session: Session, method: str, backbone: str | None) -> dict[str, Any]:
    session.method, session.backbone = _method_ok(method, backbone, session.project_id)
    if session.image_id is not None:
        prefetch(session, session.image_id)
    return {"method": session.method, "backbone": session.backbone}


def object_of(session: Session, instance_id: int) -> Instance:
    """The session image's instance, or 404 (also for instances of other images, and for
    needs-fix masks sent to someone else)."""
    require_open(session)
    instance = (
        Instance.objects.filter(
            review.visible_on_canvas(session.user), pk=instance_id, image_id=session.image_id
        )
        .select_related("image__dataset")
        .first()
    )
    if instance is None:
        raise NotFound(f"object {instance_id} is not on image {session.image_id}")
    return instance


def object_new(session: Session, label_id: int | None) -> dict[str, Any]:
    require_open(session)
    may(session, permissions.CREATE_MASKS)
    image = Image.objects.select_related("dataset").get(pk=session.image_id)
    empty = {"size": [image.height, image.width], "counts": [image.height * image.width]}
    instance = instance_create(
        image=image, mask=empty, label_id=label_id, source=EMPTY_MASK_SOURCE, author=session.user
    )
    return object_out(instance, [], with_mask=False)


def object_set_label(session: Session, instance_id: int, label_id: int | None) -> dict[str, Any]:
    from .services import instance_update

    instance = object_of(session, instance_id)
    may(session, permissions.EDIT_MASKS)
    instance = instance_update(
        instance_id=instance.id,
        expected_version=instance.version,
        changes={"label_id": label_id},
        author=session.user,
    )
    return object_out(instance, list(Prompt.objects.filter(instance=instance)), with_mask=False)


def object_delete(session: Session, instance_id: int) -> None:
    instance = object_of(session, instance_id)
    may(session, permissions.DELETE_MASKS)
    instance_delete(instance=instance)
    session.sent.pop(instance_id, None)


def prompt_add(
    session: Session,
    instance_id: int,
    kind: str,
    payload: dict[str, Any],
    *,
    seq: int,
    received_at: float,
) -> int:
    """Log the prompt (committed), then queue the object's mask; returns the revision."""
    instance = object_of(session, instance_id)
    may(session, permissions.ADD_PROMPTS)
    if not methods.accepts(session.method, kind):
        raise ApplicationError(
            f"{session.method} takes no {kind} prompts; it reads "
            f"{', '.join(_method_prompts(session))}"
        )
    prompt_append(
        instance=instance, kind=kind, payload=payload, method=session.method, author=session.user
    )
    return _queue(session, instance.id, seq=seq, received_at=received_at)


def prompt_step(
    session: Session, instance_id: int, redo: bool, *, seq: int, received_at: float
) -> int | None:
    """Undo (or redo) the object's newest prompt and queue its mask; ``None`` if nothing to do."""
    instance = object_of(session, instance_id)
    may(session, permissions.REDO_PROMPTS if redo else permissions.UNDO_PROMPTS)
    prompt = (prompt_redo if redo else prompt_undo)(instance=instance)
    if prompt is None:
        return None
    return _queue(session, instance.id, seq=seq, received_at=received_at)


def _method_prompts(session: Session) -> list[str]:
    found = methods.info(session.method)
    return list(found.prompts) if found else []


def _request(
    session: Session, instance_id: int, rev: int, seq: int, received_at: float
) -> MaskRequest:
    assert session.image_id is not None and session.project_id is not None
    return MaskRequest(
        image_id=session.image_id,
        project_id=session.project_id,
        instance_id=instance_id,
        method=session.method,
        backbone=session.backbone,
        rev=rev,
        reply_channel=session.reply_channel,
        user_id=session.user.id,
        seq=seq,
        received_at=received_at,
        size_hw=(session.height, session.width),
    )


def _queue(session: Session, instance_id: int, *, seq: int, received_at: float) -> int:
    """Bump the object's revision and queue its computation. Called after the prompt change
    committed: a worker that reads revision r then finds every prompt up to r in the log."""
    cancel_queued(session)
    rev = dispatch.bump_revision(instance_id)
    session.sent[instance_id] = rev
    session.seqs.setdefault(instance_id, {})[rev] = (seq, received_at)
    worker = dispatch.choose_worker(
        session.image_id, session.method, session.backbone, session.worker
    )
    session.worker = worker or session.worker
    dispatch.send_predict(_request(session, instance_id, rev, seq, received_at), worker)
    return rev


def requeue(session: Session, instance_id: int, rev: int, *, seq: int, received_at: float) -> bool:
    """A request got no answer in time (its worker may be dead): queue it again on the shared
    queue, forgetting the holder, unless a newer one superseded it or it was answered meanwhile.
    Returns whether it was sent."""
    if (
        session.sent.get(instance_id) != rev
        or session.image_id is None
        or dispatch.answered(instance_id) >= rev
    ):
        return False
    dispatch.forget_holder(session.image_id, session.method, session.backbone)
    if session.worker and not dispatch.is_alive(session.worker):
        session.worker = None
    dispatch.send_predict(
        replace(_request(session, instance_id, rev, seq, received_at), retry=True), None
    )
    return True


def answered_seq(
    session: Session, instance_id: int, rev: int, fallback: tuple[int, float]
) -> tuple[int, float]:
    """(seq, received_at) of the newest prompt this socket sent for the object that revision
    ``rev`` covers; ``fallback`` when this socket sent none (another socket's prompt)."""
    seqs = session.seqs.get(instance_id, {})
    covered = [r for r in seqs if r <= rev]
    if not covered:
        return fallback
    newest = seqs[max(covered)]
    for r in [r for r in covered if r < max(covered)]:  # forget what is answered
        seqs.pop(r)
    return newest


def save(session: Session) -> dict[str, Any]:
    require_open(session)
    role_now(session)  # any role may read the count; a member removed since open gets 404
    return {"objects": Instance.objects.filter(image_id=session.image_id).count()}


def submit(session: Session, task_id: int) -> dict[str, Any]:
    from .services import task_update

    task, role = task_for(session.user, task_id)
    changes = {"state": Task.State.SUBMITTED}
    permissions.require_task_change(role, changes)
    task = task_update(task=task, changes=changes)
    return {"task_id": task.id, "state": task.state}
