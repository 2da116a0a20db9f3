"""Routing of interactive work to workers: sticky sessions over Celery worker-direct queues.

Runs in the web process (no torch). The keys it reads and writes are in :mod:`.keys`: a click
goes to the direct queue of the worker that holds its image's state while that worker lives;
when the holder is gone the request goes to the shared ``interactive`` queue and whichever
worker takes it rebuilds the state from the image and the prompt log. Revisions order an
object's requests: a worker that finds a newer revision answered skips the computation.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from typing import Any

from . import keys
from .keys import redis_client
from .request import MaskRequest

log = logging.getLogger(__name__)

INTERACTIVE_QUEUE = "interactive"
# The worker-side tasks (``annotation.labeling.tasks``), sent by name: the web process never
# imports the worker's modules.
PREDICT_TASK = "annotation.labeling.tasks.predict"
PREFETCH_TASK = "annotation.labeling.tasks.prefetch"
FIND_TASK = "annotation.labeling.tasks.find_all"

__all__ = [
    "FIND_TASK",
    "INTERACTIVE_QUEUE",
    "PREDICT_TASK",
    "PREFETCH_TASK",
    "alive_workers",
    "answered",
    "bump_revision",
    "cancel_prefetch",
    "checkpoint_reports",
    "choose_worker",
    "claim",
    "click_taken",
    "click_waiting",
    "forget_holder",
    "is_alive",
    "mark_answered",
    "prefetch_start",
    "redis_client",
    "revision",
    "send_find",
    "send_predict",
    "send_prefetch",
]


def alive_workers() -> list[str]:
    """Hostnames of the interactive workers that reported in the last few seconds."""
    client = redis_client()
    found = client.scan_iter(f"{keys.ALIVE_PREFIX}*", count=100)
    return sorted(key[len(keys.ALIVE_PREFIX) :] for key in found)


def is_alive(hostname: str) -> bool:
    return bool(redis_client().exists(keys.alive(hostname)))


def choose_worker(
    image_id: int, method: str, backbone: str, preferred: str | None = None
) -> str | None:
    """The worker that should serve this image: its live holder, else ``preferred`` (the
    session's worker) if alive, else a random live worker; it becomes the holder. Each must
    serve the method and backbone (a SAM variant: only a worker that has its checkpoint).
    ``None`` when no such worker has reported (the shared queue then decides)."""
    client = redis_client()
    key = keys.holder(image_id, method, backbone)
    holder = client.get(key)
    serves = _serving(method, backbone)
    if holder and is_alive(holder) and serves(holder):
        return holder
    if preferred and is_alive(preferred) and serves(preferred):
        chosen = preferred
    else:
        workers = [w for w in alive_workers() if serves(w)]
        if not workers:
            client.delete(key)
            return None
        chosen = random.choice(workers)
    client.set(key, chosen, ex=keys.HOLDER_TTL_S)
    return chosen


def checkpoint_reports() -> dict[str, dict[str, Any] | None]:
    """hostname → checkpoint report (:mod:`.checkpoints`) of every alive interactive worker
    (None: it published none, e.g. a worker of an older release). A dead worker's report is not
    read, even before it expires."""
    workers = alive_workers()
    if not workers:
        return {}
    raw = keys.redis_client().mget([keys.weights(h) for h in workers])
    out: dict[str, dict[str, Any] | None] = {}
    for hostname, value in zip(workers, raw, strict=True):
        try:
            out[hostname] = json.loads(value) if value else None
        except ValueError:
            log.warning("unreadable checkpoint report of worker %s", hostname)
            out[hostname] = None
    return out


def _serving(method: str, backbone: str):
    """A test ``hostname -> bool``: can that worker serve (method, backbone)? Every worker can,
    except for a variant served only with its checkpoint on the worker's disk (the SAM family,
    ``checkpoints.needs_weights``): then only the workers that reported it."""
    from . import checkpoints

    if (method, backbone) not in checkpoints.needs_weights():
        return lambda hostname: True
    have = {
        hostname
        for hostname, report in checkpoint_reports().items()
        if (method, backbone) in checkpoints.present({hostname: report})
    }
    return have.__contains__


def claim(image_id: int, method: str, backbone: str, hostname: str) -> None:
    """``hostname`` now holds the image's state: later clicks go straight to it."""
    redis_client().set(keys.holder(image_id, method, backbone), hostname, ex=keys.HOLDER_TTL_S)


def forget_holder(image_id: int, method: str, backbone: str) -> None:
    redis_client().delete(keys.holder(image_id, method, backbone))


def bump_revision(instance_id: int) -> int:
    """A new revision of the object's prompts (after the change committed)."""
    client = redis_client()
    rev = int(client.incr(keys.revision(instance_id)))
    client.expire(keys.revision(instance_id), keys.REVISION_TTL_S)
    return rev


def revision(instance_id: int) -> int:
    """The newest revision queued for the object (0 if none)."""
    return int(redis_client().get(keys.revision(instance_id)) or 0)


def answered(instance_id: int) -> int:
    """The newest revision whose mask is saved (0 if none)."""
    return int(redis_client().get(keys.done(instance_id)) or 0)


def mark_answered(instance_id: int, rev: int) -> None:
    redis_client().set(keys.done(instance_id), rev, ex=keys.REVISION_TTL_S)


def _queue_for(worker: str | None):
    """The shared queue's name, or the worker's direct queue (a kombu ``Queue``: its
    exchange and routing key are what reach that one worker)."""
    if worker is None:
        return INTERACTIVE_QUEUE
    from celery.utils.nodenames import worker_direct

    return worker_direct(worker)


def _send(name: str, args: list, worker: str | None) -> None:
    # the app Django loaded (config/__init__ makes it current): no import of the project package
    from celery import current_app

    current_app.send_task(name, args=args, queue=_queue_for(worker))


def send_predict(request: MaskRequest, worker: str | None) -> None:
    """Queue one mask computation on ``worker``'s direct queue (the shared one if None).
    A prefetch that worker is computing stops for it (:func:`click_waiting`)."""
    if worker is not None:
        redis_client().set(keys.click_waiting(worker), 1, ex=keys.CLICK_WAITING_TTL_S)
    _send(PREDICT_TASK, [request.sent_now().as_message()], worker)


def send_find(message: dict[str, Any], worker: str | None) -> None:
    """Queue a "find all" (``message``: the wire form of ``annotation.labeling.finding``'s
    request) on ``worker``'s direct queue (the shared one if None). Someone waits for it as for
    a click: a prefetch that worker is computing stops for it."""
    if worker is not None:
        redis_client().set(keys.click_waiting(worker), 1, ex=keys.CLICK_WAITING_TTL_S)
    _send(FIND_TASK, [message], worker)


def send_prefetch(
    image_id: int, method: str, backbone: str, worker: str | None, cancel_key: str | None = None
) -> None:
    """Compute the image's state on ``worker`` ahead of its first click. With ``cancel_key``
    (:func:`prefetch_start`), :func:`cancel_prefetch` can still call it off until it starts."""
    args: list = [image_id, method, backbone]
    if cancel_key is not None:
        args.append(cancel_key)
    _send(PREFETCH_TASK, args, worker)


def click_waiting(hostname: str) -> bool:
    """A click is queued for ``hostname``: a prefetch it is computing should stop."""
    return bool(redis_client().exists(keys.click_waiting(hostname)))


def click_taken(hostname: str) -> None:
    """The worker started a click: the ones queued behind it need no prefetch to stop."""
    redis_client().delete(keys.click_waiting(hostname))


def prefetch_start() -> str:
    """A new cancellable prefetch's key (``keys.prefetch``), set until one side takes it."""
    key = keys.prefetch(uuid.uuid4().hex)
    redis_client().set(key, 1, ex=keys.PREFETCH_TTL_S)
    return key


def cancel_prefetch(key: str) -> bool:
    """Take the prefetch's key: True if it had not started (the worker will skip it), False
    if the worker took it first (it is computing or done). The worker calls this too, as it
    starts: exactly one of the two sides wins."""
    return bool(redis_client().delete(key))
