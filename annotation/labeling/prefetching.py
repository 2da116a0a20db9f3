"""Image state computed ahead of the clicks: the open image at once, the task's next one
when the annotator pauses (``consumers.AnnotateConsumer`` times the pause).

A solo interactive worker answers one thing at a time, so a prefetch of the next image must
never hold a click back: it is queued with a cancel key, and a prompt that comes while it
still waits calls it off (:func:`cancel_queued`). One the worker already started stops at its
next checkpoint once a click is queued for that worker (``dispatch.send_predict`` says so,
``worker.image_state_unless_clicked`` listens). Either way the next pause queues it again.
"""

from __future__ import annotations

from typing import Any

from annotation.segmentation.interactive import dispatch

# ``live.Session``, the socket's state: named, not imported (live imports this module)
Session = Any


def prefetch(session: Session, image_id: int | None) -> None:
    """Compute an image's state now, on the worker that will answer its clicks. The open image
    at once; the task's next one when the annotator pauses (the consumer decides), so that
    it never queues in front of a click."""
    if image_id is None:
        return
    worker = dispatch.choose_worker(image_id, session.method, session.backbone, session.worker)
    session.worker = session.worker or worker
    dispatch.send_prefetch(image_id, session.method, session.backbone, worker)


def prefetch_next(session: Session) -> None:
    """The annotator paused (the consumer's timer): queue the task's next image, once per
    open, cancellable until the worker starts it (:func:`cancel_queued`)."""
    image_id, session.next_image_id = session.next_image_id, None
    if image_id is None:
        return
    worker = dispatch.choose_worker(image_id, session.method, session.backbone, session.worker)
    session.worker = session.worker or worker
    key = dispatch.prefetch_start()
    session.prefetch_pending = (key, image_id)
    dispatch.send_prefetch(image_id, session.method, session.backbone, worker, key)


def cancel_queued(session: Session) -> None:
    """A prompt came: a prefetch still queued would hold its mask back on a worker that
    answers one thing at a time, so call it off. One that started stops for the click's
    sake on the worker. The next pause queues it again either way (if it had finished
    before the click, that is a cache hit on the worker)."""
    if session.prefetch_pending is None:
        return
    key, image_id = session.prefetch_pending
    session.prefetch_pending = None
    dispatch.cancel_prefetch(key)
    if session.next_image_id is None:
        session.next_image_id = image_id
