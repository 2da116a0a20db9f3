"""Find all on the annotation canvas: every instance of a label in the open image, found from
the label's name by a method that finds objects by text, becomes a pending pseudo label of
that label (the canvas's proposals: the annotator keeps or deletes each).

Socket side, :func:`find_all` (``find_all`` message): the checks, in this order: an image is
open; the user's role may create masks (read now); the label is one of the image's project
(else not_found); a method that finds by text can run here (its checkpoint on an alive
interactive worker: :func:`~annotation.segmentation.interactive.methods.text_finding`, else
``unavailable`` naming the checkpoint and its folder); no other find of this socket is in
flight (else ``busy``). Then the request goes to a worker that serves the method, the
session's own when it does (``dispatch.choose_worker``), and nothing is answered now.

Worker side, :func:`found_save` (``tasks.find_all`` calls it with what
``segmentation.interactive.finding`` found): in one transaction, each mask that is not a
duplicate (IoU above :data:`DUPLICATE_IOU` with an object of that label on the image, those
stored by this find included) becomes an ``Instance`` (``pseudo``, review pending, ``source``
the method, ``model_name`` the checkpoint, ``model_version`` :data:`MODEL_VERSION`, its
score); the socket hears ``annotate.found`` after commit. A failure answers
``annotate.find_failed`` (:func:`failed`) and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.common import rle
from annotation.common.exceptions import ApplicationError, NotFound
from annotation.common.realtime import send_now, send_on_commit
from annotation.datasets.models import Image
from annotation.projects.models import LabelClass
from annotation.segmentation.interactive import dispatch, methods
from annotation.segmentation.interactive.request import WireForm

from . import permissions
from .models import Instance
from .services import instance_create
from .session import Session, may, object_out, require_open

DUPLICATE_IOU = 0.9  # a found mask this close to an object of its label is that object
MODEL_VERSION = "find-all"  # what the found instances' model_version says (a job's: job-<id>)
# Seconds the socket waits for a find's answer before it gives up on it (the worker may have
# died) and may find again: far beyond loading a model and encoding one image.
FIND_WAIT_S = 300.0


class Busy(ApplicationError):
    code = "busy"


class Unavailable(ApplicationError):
    code = "unavailable"


@dataclass(frozen=True)
class FindRequest(WireForm):
    """Find every ``text`` (label ``label_id``'s name) in image ``image_id`` with ``method`` /
    ``backbone``; store what scores above ``threshold``, at most ``max_instances``, as
    ``model_name``'s. ``size_hw``: the stored image's (height, width); ``seq`` /
    ``received_at``: the client's message and when the socket read it (epoch seconds);
    ``reply_channel``: the socket's channel-layer name. Travels as a plain dict."""

    image_id: int
    project_id: int
    label_id: int
    text: str
    method: str
    backbone: str
    model_name: str
    threshold: float
    max_instances: int
    reply_channel: str
    user_id: int
    seq: int
    received_at: float
    size_hw: tuple[int, int]


def find_all(session: Session, label_id: int, *, seq: int, received_at: float) -> None:
    """Queue a find of label ``label_id`` on the open image (the checks: module docstring);
    the answer reaches the socket later, as ``annotate.found`` or ``annotate.find_failed``."""
    require_open(session)
    may(session, permissions.CREATE_MASKS)
    label = LabelClass.objects.filter(pk=label_id, project_id=session.project_id).first()
    if label is None:
        raise NotFound(f"label {label_id} is not a label of this project")
    choice = methods.text_finding()
    if not choice["available"]:
        raise Unavailable(f"Find all is not available: {choice['why']}")
    if session.finding is not None:
        raise Busy(f"a Find all (seq {session.finding}) is still running: wait for its answer")
    assert session.image_id is not None and session.project_id is not None
    config = settings.MASKWRIGHT
    request = FindRequest(
        image_id=session.image_id,
        project_id=session.project_id,
        label_id=label.id,
        text=label.name,
        method=choice["method"],
        backbone=choice["backbone"],
        model_name=choice["model_id"],
        threshold=float(config["FIND_ALL_THRESHOLD"]),
        max_instances=int(config["FIND_ALL_MAX"]),
        reply_channel=session.reply_channel,
        user_id=session.user.id,
        seq=seq,
        received_at=received_at,
        size_hw=(session.height, session.width),
    )
    # the worker that may hold the image already (its holder, or the session's), if it serves
    # the method; None: none such has reported, the shared queue decides
    worker = dispatch.choose_worker(
        request.image_id, request.method, request.backbone, session.worker
    )
    session.finding = seq
    dispatch.send_find(request.as_message(), worker)


def answered(session: Session, seq: int) -> None:
    """The find of ``seq`` is answered (or given up): the socket may find again."""
    if session.finding == seq:
        session.finding = None


def found_save(
    request: FindRequest,
    masks: list[dict[str, Any]],
    scores: list[float],
    *,
    model_s: float,
    worker: str,
) -> dict[str, int]:
    """Store the found ``masks`` (stored RLE of the image's size, best ``scores`` first) as
    pending pseudo labels of the request's label, skipping duplicates, in one transaction;
    answer the socket after commit. Returns ``{"count", "skipped"}``.

    Finds of one image are serialised by the image's row lock, so two sockets finding the same
    label at once store each instance once."""
    author = get_user_model().objects.filter(pk=request.user_id).first()
    kept: list[Instance] = []
    skipped = 0
    with transaction.atomic():
        image = Image.objects.select_for_update().select_related("dataset").get(pk=request.image_id)
        taken = list(
            Instance.objects.filter(image=image, label_id=request.label_id).values_list(
                "mask", flat=True
            )
        )
        for mask, score in list(zip(masks, scores, strict=True))[: request.max_instances]:
            if taken and float(rle.ious([mask], taken).max()) > DUPLICATE_IOU:
                skipped += 1
                continue
            instance = instance_create(
                image=image,
                mask=mask,
                label_id=request.label_id,
                source=request.method,
                model_name=request.model_name,
                model_version=MODEL_VERSION,
                score=score,
                author=author,
                pseudo=True,
            )
            taken.append(instance.mask)
            kept.append(instance)
        send_on_commit(
            request.reply_channel,
            {
                "type": "annotate.found",
                "seq": request.seq,
                "image_id": request.image_id,
                "label_id": request.label_id,
                "text": request.text,
                "objects": [object_out(i, [], with_mask=True) for i in kept],
                "count": len(kept),
                "skipped": skipped,
                "model_ms": round(model_s * 1000, 2),
                "worker": worker,
            },
        )
    return {"count": len(kept), "skipped": skipped}


def failed(request: FindRequest, why: str) -> None:
    """Tell the socket its find failed (nothing was stored)."""
    send_now(
        request.reply_channel,
        {"type": "annotate.find_failed", "seq": request.seq, "message": why},
    )
