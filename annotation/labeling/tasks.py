"""Celery interface of live annotation: the interactive worker's two tasks and its liveness.

Thin: the request (:class:`~annotation.segmentation.interactive.request.MaskRequest`) names an
object; the prompt log (Postgres) says what to compute, ``annotation.segmentation`` computes it,
:mod:`.saves` saves it and answers the socket.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from annotation.segmentation.interactive.dispatch import (
    FIND_TASK,
    INTERACTIVE_QUEUE,
    PREDICT_TASK,
    PREFETCH_TASK,
)

log = logging.getLogger(__name__)


@shared_task(name=PREDICT_TASK, ignore_result=True)
def predict(message: dict[str, Any]) -> None:
    from annotation.segmentation.interactive import dispatch, worker
    from annotation.segmentation.interactive.compute import compute
    from annotation.segmentation.interactive.request import MaskRequest, Timeline

    from . import saves

    request = MaskRequest.from_message(message)
    timeline = Timeline.starting(request)
    if worker.hostname():  # this click runs: nothing queued behind it waits for a prefetch
        dispatch.click_taken(worker.hostname())
    instance_id = request.instance_id
    if dispatch.answered(instance_id) >= request.rev:
        log.info("object %s rev %s: already answered, skipped", instance_id, request.rev)
        return  # an earlier task computed a newer state of this object
    # Compute the object as the log stands now, which may include prompts newer than this
    # request's: under load, the oldest waiting request of an object answers all of them.
    rev = max(request.rev, dispatch.revision(instance_id))
    objects = saves.objects_to_compute(request)
    if instance_id not in objects:
        return  # the object was deleted meanwhile
    timeline.compute_at = time.time()
    try:
        computed = compute(request, objects)
    except Exception as exc:  # the socket hears why; the log keeps the prompt
        log.exception("predict failed for %s", request)
        from annotation.common.realtime import send_now

        send_now(
            request.reply_channel,
            {
                "type": "annotate.failed",
                "seq": request.seq,
                "instance_id": instance_id,
                "message": f"{request.method} could not compute the mask: {exc}",
            },
        )
        return
    _claim(request.image_id, request.method, request.backbone)
    # which prompts each mask answers ("base", the mask edits apply to, has no seq)
    seqs = {pk: [p["seq"] for p in prompts if "seq" in p] for pk, prompts in objects.items()}
    saved = saves.masks_save(
        request,
        computed.masks,
        rev=rev,
        model_s=computed.model_s,
        worker=worker.hostname(),
        cached=computed.cached,
        seqs=seqs,
        timeline=timeline,
        candidates=computed.candidates,
    )
    log.info(
        "object %s rev %s (request %s): %s, model %.3f s",
        instance_id,
        rev,
        request.rev,
        "saved" if saved else "a newer mask was saved first",
        computed.model_s,
    )


@shared_task(name=PREFETCH_TASK, ignore_result=True)
def prefetch(image_id: int, method: str, backbone: str, cancel_key: str | None = None) -> None:
    from annotation.segmentation.interactive import dispatch, worker

    # The task's next image (a cancel key) never holds a click back: called off while queued,
    # stopped while it runs. The open image's runs through: its first click needs it anyway.
    if cancel_key is None:
        worker.image_state(image_id, method, backbone)
    elif not dispatch.cancel_prefetch(cancel_key):
        log.info("prefetch of image %s skipped: a click came first", image_id)
        return
    elif not worker.image_state_unless_clicked(image_id, method, backbone):
        log.info("prefetch of image %s stopped: a click came while it ran", image_id)
        return
    _claim(image_id, method, backbone)


@shared_task(name=FIND_TASK, ignore_result=True)
def find_all(message: dict[str, Any]) -> None:
    """Find every instance of a label in an image (``finding.FindRequest``) and store them as
    pending pseudo labels; the socket hears what was found, or why it failed."""
    from annotation.segmentation.interactive import dispatch, worker
    from annotation.segmentation.interactive.finding import find

    from . import finding

    request = finding.FindRequest.from_message(message)
    if worker.hostname():  # this find runs: nothing queued behind it waits for a prefetch
        dispatch.click_taken(worker.hostname())
    try:
        found = find(
            request.image_id,
            request.method,
            request.backbone,
            request.text,
            size_hw=request.size_hw,
            threshold=request.threshold,
            max_instances=request.max_instances,
        )
        stored = finding.found_save(
            request, found.masks, found.scores, model_s=found.model_s, worker=worker.hostname()
        )
    except Exception as exc:  # the socket hears why; nothing was stored
        log.exception("find all failed for %s", request)
        finding.failed(request, f"{request.method} could not find {request.text!r}: {exc}")
        return
    _claim(request.image_id, request.method, request.backbone)  # it holds the encoding now
    log.info(
        "find all %r on image %s: %s stored, %s duplicates skipped, model %.3f s%s",
        request.text,
        request.image_id,
        stored["count"],
        stored["skipped"],
        found.model_s,
        "" if found.encoded else " (image encoded before)",
    )


def _claim(image_id: int, method: str, backbone: str) -> None:
    """This worker now holds the image's state: later clicks come straight here."""
    from annotation.segmentation.interactive import dispatch, worker

    if worker.hostname():
        dispatch.claim(image_id, method, backbone, worker.hostname())


def _consumes_interactive(sender: Any) -> bool:
    try:
        return INTERACTIVE_QUEUE in {q.name for q in sender.task_consumer.queues}
    except AttributeError:
        return False


@shared_task(name="annotation.labeling.tasks.warm_up", ignore_result=True)
def warm_up() -> None:
    """Load the model, then announce this worker. A task, so that it runs on the thread that
    will run the clicks: torch work done first on another thread left the clicks' OpenMP
    regions twice as slow (M2N2's maps 0.22 s against 0.12 s at 512 px)."""
    from annotation.segmentation.interactive import worker

    try:
        worker.warm_up()
    except Exception:  # a broken model must not keep the worker from serving others
        log.exception("warm-up failed")
    worker.start_heartbeat(warm_up.request.hostname)


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    if sender is None or not _consumes_interactive(sender):
        return
    from django.conf import settings

    from annotation.segmentation.interactive import worker

    if settings.MASKWRIGHT["INTERACTIVE_WARMUP"]:
        from celery.utils.nodenames import worker_direct

        # until it has run, the worker does not announce itself: sessions are not pinned to
        # it (it still serves the shared queue)
        warm_up.apply_async(queue=worker_direct(sender.hostname))
    else:
        worker.start_heartbeat(sender.hostname)


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    from annotation.segmentation.interactive import worker

    worker.stop_heartbeat()
