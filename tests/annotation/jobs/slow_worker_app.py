"""Our Celery app, with the ``verify`` runner swapped for a slow one: a worker to kill mid-job.

Started by ``start_worker(..., app="tests.annotation.jobs.slow_worker_app")``. The swap happens
before the first task runs (Django is set up by then, so the datasets app has registered its
own ``verify``, which ours replaces).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import task_prerun, worker_init

from config.celery_app import app  # noqa: F401  (the app Celery's -A loads)


def slow_verify(ctx: Any) -> dict[str, Any]:
    """``params``: items (count), sleep (s per item), long_at / long_s (one item that takes
    longer than a lease: only the heartbeat thread keeps the lease then). The cursor keeps
    where each run started, so a test sees the resume."""
    items, sleep = int(ctx.params.get("items", 40)), float(ctx.params.get("sleep", 0.2))
    starts = [*ctx.cursor.get("starts", []), int(ctx.cursor.get("i", 0))]
    for i in range(int(ctx.cursor.get("i", 0)), items):
        time.sleep(float(ctx.params.get("long_s", 0)) if i == ctx.params.get("long_at") else sleep)
        ctx.save_progress(i + 1, items, {"i": i + 1, "starts": starts})
    return {"starts": starts}


@worker_init.connect
@task_prerun.connect
def _swap(**_: Any) -> None:
    """Before the worker's start-up sweep (worker_ready) and before any task. The verify kind
    goes to the test's own queue (MASKWRIGHT_TEST_QUEUE), away from the session's worker."""
    from annotation.jobs import engine

    engine.RUNNERS["verify"] = slow_verify
    engine.QUEUES["verify"] = os.environ.get("MASKWRIGHT_TEST_QUEUE", "default")
