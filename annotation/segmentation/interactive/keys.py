"""The interactive loop's Redis keys, all in one place (short-lived; Postgres holds what lasts).

* ``mw:iworker:<hostname>``: an interactive worker is alive. It refreshes the key every
  :data:`HEARTBEAT_S` with an :data:`ALIVE_TTL_S` expiry (:mod:`.worker`).
* ``mw:iworker-weights:<hostname>``: that worker's checkpoint report (JSON: the checkpoints it
  found on its disk with their size and device, the missing ones with the folder to use;
  :mod:`.checkpoints`). The heartbeat writes it with the alive key, with the same expiry; the
  prefix differs so that scanning ``mw:iworker:*`` finds only alive keys.
* ``mw:holder:<image>:<method>:<backbone>``: the worker that holds (or is computing) the
  image's state. Clicks on that image go to its direct queue while it lives (:mod:`.dispatch`).
* ``mw:rev:<instance>``: a counter bumped on every change to an object's prompts.
* ``mw:done:<instance>``: the newest revision whose mask is saved. A worker that finds its
  revision answered skips the work: a newer request carried the mask.
* ``mw:prefetch:<token>``: a queued prefetch of a task's next image that may still be
  cancelled. Whoever deletes it first wins: the worker (it starts computing) or the web
  process (a click came first, so the worker skips it and the click is not kept waiting).
* ``mw:clicks:<hostname>``: a click is queued for that worker. A prefetch it has started
  stops at its next checkpoint (``inference.interrupt``); the click's task clears the key.
"""

from __future__ import annotations

from functools import lru_cache

ALIVE_PREFIX = "mw:iworker:"
ALIVE_TTL_S = 3
WEIGHTS_PREFIX = "mw:iworker-weights:"
HEARTBEAT_S = 1.0
HOLDER_TTL_S = 3600
REVISION_TTL_S = 24 * 3600
PREFETCH_TTL_S = 600
CLICK_WAITING_TTL_S = 60  # outlives any queue wait; a dead worker's key just expires


@lru_cache(maxsize=1)
def redis_client():
    """The process's Redis connection (``settings.REDIS_URL``), answers decoded to str."""
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, decode_responses=True)


def alive(hostname: str) -> str:
    return f"{ALIVE_PREFIX}{hostname}"


def weights(hostname: str) -> str:
    return f"{WEIGHTS_PREFIX}{hostname}"


def holder(image_id: int, method: str, backbone: str) -> str:
    return f"mw:holder:{image_id}:{method}:{backbone}"


def revision(instance_id: int) -> str:
    return f"mw:rev:{instance_id}"


def done(instance_id: int) -> str:
    return f"mw:done:{instance_id}"


def prefetch(token: str) -> str:
    return f"mw:prefetch:{token}"


def click_waiting(hostname: str) -> str:
    return f"mw:clicks:{hostname}"
