"""The annotation socket's worker side: the prompt log an interactive worker replays, and the
masks it saves (:mod:`.live` is the socket side; ``tasks.predict`` calls these).

Revisions (see :mod:`.live`): a worker computes an object from its log as of revision r and
saves only if no mask of r or newer is saved; the saved mask records the prompt seqs it answers
(``Instance.mask_seqs``, read by :mod:`.freshness`), and the socket is answered after commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from annotation.common import rle
from annotation.common.realtime import broadcast_on_commit, project_group, send_on_commit
from annotation.segmentation.interactive import dispatch, methods
from annotation.segmentation.interactive.request import MaskRequest, Timeline

from . import review
from .models import METHOD_KINDS, Instance, Prompt, Source


def history(undone: list[bool]) -> dict[str, bool]:
    """``can_undo`` / ``can_redo`` of an object from its prompts' ``undone`` flags."""
    return {"can_undo": not all(undone), "can_redo": any(undone)}


def objects_to_compute(request: MaskRequest) -> dict[int, list[dict[str, Any]]]:
    """The prompt lists the worker replays: the object itself, or for a method that declares
    itself multi-object every object of the image whose prompts were given with that method."""
    if methods.is_multi_object(request.method):
        ids = list(
            Prompt.objects.filter(
                instance__image_id=request.image_id, undone=False, method=request.method
            )
            .values_list("instance_id", flat=True)
            .distinct()
        )
        ids = sorted(set(ids) | {request.instance_id})
    else:
        ids = [request.instance_id]
    rows = Prompt.objects.filter(instance_id__in=ids, undone=False).order_by("instance_id", "seq")
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for p in rows.values("id", "instance_id", "seq", "kind", "payload", "method"):
        out[p["instance_id"]].append(p)
    existing = dict(Instance.objects.filter(pk__in=ids).values_list("id", "base_mask"))
    for instance_id, base in existing.items():
        if base is not None:  # what edits apply to while no method prompt exists (compute.BASE)
            out[instance_id].insert(0, {"id": 0, "kind": "base", "payload": base, "method": ""})
    return {k: v for k, v in out.items() if k in existing}


def stamp(ranked: dict[str, Any] | None, version: int) -> dict[str, Any] | None:
    """``Instance.candidates`` of a mask of ``version``: the ranked masks' info and that version."""
    return None if ranked is None else {**ranked, "version": version}


def masks_save(
    request: MaskRequest,
    masks: dict[int, Any],
    *,
    rev: int,
    model_s: float,
    worker: str,
    cached: bool,
    seqs: dict[int, list[int]] | None = None,
    timeline: Timeline | None = None,
    candidates: dict[int, dict[str, Any] | None] | None = None,
) -> bool:
    """Store masks computed from the log as of revision ``rev`` of the request's object, and
    answer the socket after commit. Returns False (nothing written) when a mask of that
    revision or a newer one is already saved, or the object is gone. ``seqs``: per object,
    the active prompt seqs the mask was computed from (``Instance.mask_seqs``); ``candidates``:
    per object, the method's ranked alternatives and the one chosen (``compute.choose``), sent
    with each mask so that the page can offer the others, and stored with the mask's version
    (``Instance.candidates``) for the next time the image is opened.

    A saved mask makes the object a mask of the method (manual when only brush edits made
    it), except for pseudo labels under review: see :func:`review.fix_saved_fields` (a
    corrected needs-fix mask goes back to the review queue as pending)."""
    import numpy as np

    instance_id = request.instance_id
    timeline = timeline or Timeline.starting(request)
    out = []
    with transaction.atomic():
        # the row locks order concurrent savers of one object: the answered check is exact
        locked = {
            i.id: i
            for i in Instance.objects.select_for_update().filter(pk__in=list(masks)).order_by("id")
        }
        if instance_id not in locked or dispatch.answered(instance_id) >= rev:
            return False
        # one read of the objects' prompt log: which have a prompt a method reads (their
        # source is the method), and the undo / redo flags of the answer
        undone: dict[int, list[bool]] = {pk: [] for pk in locked}
        modelled: set[int] = set()
        for pk, kind, flag in Prompt.objects.filter(instance_id__in=list(locked)).values_list(
            "instance_id", "kind", "undone"
        ):
            undone[pk].append(flag)
            if kind in METHOD_KINDS and not flag:
                modelled.add(pk)
        fixed = []
        for pk, instance in locked.items():
            mask = np.asarray(masks[pk], dtype=bool)
            stored = rle.encode(mask)
            area, bbox = rle.area_and_bbox(stored)
            fresh = {"mask_seqs": seqs[pk]} if seqs is not None and pk in seqs else {}
            ranked = (candidates or {}).get(pk)
            if stored == instance.mask:
                fresh["candidates"] = stamp(ranked, instance.version)
                changed = {k: v for k, v in fresh.items() if getattr(instance, k) != v}
                if changed:  # it now answers newer prompts, or another candidate list
                    Instance.objects.filter(pk=pk).update(**changed)
                continue  # unchanged (another object's prompt of a multi-object method)
            fresh["candidates"] = stamp(ranked, instance.version + 1)
            fields = {
                "source": request.method if pk in modelled else Source.MANUAL,
                "model_name": f"{request.method}/{request.backbone}",
                # a person's mask now (a pseudo label under review keeps its flag below)
                "pseudo": False,
            }
            under_review = review.fix_saved_fields(instance, request.user_id)
            if under_review is not None:
                fields.update(under_review)
                if instance.review_state != under_review.get("review_state", instance.review_state):
                    fixed.append(pk)
            Instance.objects.filter(pk=pk).update(
                mask=stored, area=area, bbox=bbox, version=F("version") + 1, **fields, **fresh
            )
            box, crop = rle.crop(mask)
            out.append({"object_id": pk, "version": instance.version + 1, "box": box, "rle": crop})
        if instance_id not in {m["object_id"] for m in out}:  # unchanged: still answer the click
            instance = locked[instance_id]
            box, crop = rle.crop(np.asarray(masks[instance_id], dtype=bool))
            out.append(
                {"object_id": instance_id, "version": instance.version, "box": box, "rle": crop}
            )
        for m in out:
            m.update(history(undone[m["object_id"]]))
            m["candidates"] = (candidates or {}).get(m["object_id"])
        # Set while the row lock is held: the next saver of this object (waiting on the lock)
        # must see it. If the commit failed after this, a retry would be skipped; the log
        # still holds the prompt and the next prompt or a reopen recomputes the mask.
        dispatch.mark_answered(instance_id, rev)
        send_on_commit(
            request.reply_channel,
            {
                "type": "annotate.mask",
                "seq": request.seq,
                "rev": rev,
                "instance_id": instance_id,
                "masks": out,
                "model_ms": round(model_s * 1000, 2),
                "received_at": request.received_at,
                "worker": worker,
                "cached": cached,
                "stages": timeline.stages_ms(model_s),
            },
        )
        for m in out:
            broadcast_on_commit(
                project_group(request.project_id),
                "instance.updated",
                {
                    "instance_id": m["object_id"],
                    "image_id": request.image_id,
                    "version": m["version"],
                },
            )
        if fixed:
            broadcast_on_commit(
                project_group(request.project_id),
                "instances.reviewed",
                {"review_state": "pending", "count": len(fixed), "ids": fixed},
            )
    return True
