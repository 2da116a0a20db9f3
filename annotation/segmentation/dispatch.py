"""Routing of interactive work to workers: sticky sessions over Celery worker-direct queues.

Runs in the web process (no torch). Redis holds three kinds of short-lived keys:

* ``mw:iworker:<hostname>``: an interactive worker is alive (it refreshes the key every
  second with a 3-second expiry, see :mod:`annotation.segmentation.worker`);
* ``mw:holder:<image>:<method>:<backbone>``: the worker that holds (or is computing) the
  image's features. Clicks on that image go to its direct queue while it lives;
* ``mw:rev:<instance>``: a counter bumped on every change to an object's prompts. A worker
  that finds a newer revision skips the computation: the newer request carries the mask.

When the holder is gone (key expired) the request goes to the shared ``interactive`` queue and
whichever worker takes it rebuilds the state from the image and the prompt log.
"""
from __future__ import annotations

import random
import time
from functools import lru_cache
from typing import Any

INTERACTIVE_QUEUE = "interactive"
ALIVE_PREFIX = "mw:iworker:"
HOLDER_TTL_S = 3600


@lru_cache(maxsize=1)
def redis_client():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, decode_responses=True)


def alive_workers() -> list[str]:
    """Hostnames of the interactive workers that reported in the last few seconds."""
    client = redis_client()
    return sorted(key[len(ALIVE_PREFIX):] for key in client.scan_iter(f"{ALIVE_PREFIX}*", count=100))


def is_alive(hostname: str) -> bool:
    return bool(redis_client().exists(f"{ALIVE_PREFIX}{hostname}"))


def holder_key(image_id: int, method: str, backbone: str) -> str:
    return f"mw:holder:{image_id}:{method}:{backbone}"


def choose_worker(image_id: int, method: str, backbone: str, preferred: str | None = None) -> str | None:
    """The worker that should serve this image: its live holder, else ``preferred`` (the
    session's worker) if alive, else a random live worker; it becomes the holder. ``None``
    when no worker has reported yet (the shared queue then decides)."""
    client = redis_client()
    key = holder_key(image_id, method, backbone)
    holder = client.get(key)
    if holder and is_alive(holder):
        return holder
    if preferred and is_alive(preferred):
        chosen = preferred
    else:
        workers = alive_workers()
        if not workers:
            client.delete(key)
            return None
        chosen = random.choice(workers)
    client.set(key, chosen, ex=HOLDER_TTL_S)
    return chosen


def forget_holder(image_id: int, method: str, backbone: str) -> None:
    redis_client().delete(holder_key(image_id, method, backbone))


def bump_revision(instance_id: int) -> int:
    client = redis_client()
    key = f"mw:rev:{instance_id}"
    rev = int(client.incr(key))
    client.expire(key, 24 * 3600)
    return rev


def _queue_for(worker: str | None):
    if worker is None:
        return INTERACTIVE_QUEUE
    from celery.utils.nodenames import worker_direct

    return worker_direct(worker)


def send_predict(request: dict[str, Any], worker: str | None) -> None:
    """Queue one mask computation. ``request``: image_id, instance_ids, method, backbone,
    revs ({instance_id: rev}), reply_channel, seq, received_at (epoch seconds)."""
    from config.celery_app import app

    request = {**request, "queued_at": time.time()}
    app.send_task("annotation.labeling.tasks.predict", args=[request], queue=_queue_for(worker))


def send_prefetch(image_id: int, method: str, backbone: str, worker: str | None) -> None:
    """Compute the image's state on ``worker`` ahead of its first click."""
    from config.celery_app import app

    app.send_task(
        "annotation.labeling.tasks.prefetch", args=[image_id, method, backbone], queue=_queue_for(worker)
    )
