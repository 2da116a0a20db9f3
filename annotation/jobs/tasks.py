"""Celery interface of the jobs app: ids in, the engine does the work; and the lease sweep
every worker runs (at start, then every half lease) so that no job stays stuck on a dead one."""
from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)
_sweeper: dict[str, threading.Event] = {}


@shared_task(name="annotation.jobs.tasks.job_run", acks_late=True, reject_on_worker_lost=True, bind=True)
def job_run(self: Any, job_id: int) -> str:
    from . import runners  # noqa: F401  (registers the runners in this worker)
    from .engine import job_execute

    return job_execute(job_id, worker=self.request.hostname)


@shared_task(name="annotation.jobs.tasks.ping")
def ping() -> str:
    """Health check used by ``maskwright check``: answers from whichever worker takes it."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _sweep_loop(stop: threading.Event, queues: set[str]) -> None:
    from django.db import connection

    from .lease import jobs_requeue_waiting, jobs_sweep, lease_s

    try:
        # A (re)started platform: running jobs whose worker died come back (or fail), and
        # queued ones whose message a broker restart lost are sent again.
        jobs_sweep()
        requeued = jobs_requeue_waiting(queues)
        if requeued:
            log.info("queued jobs sent again at worker start: %s", requeued)
    except Exception:
        log.exception("job sweep at worker start failed")
    try:
        while not stop.wait(lease_s() / 2):
            try:
                swept = jobs_sweep()
                if swept:
                    log.warning("jobs whose worker stopped: %s", swept)
            except Exception:  # the database may be restarting: try again next time
                log.exception("job sweep failed")
                connection.close()
    finally:
        connection.close()


@worker_ready.connect
def _start_sweeper(sender: Any = None, **_: Any) -> None:
    try:
        queues = {q.name for q in sender.task_consumer.queues}
    except AttributeError:
        return
    # each worker's own direct queue ends in .dq2 (CELERY_WORKER_DIRECT)
    queues = {q for q in queues if q != "interactive" and not q.endswith(".dq2")}
    if not queues:
        return  # interactive workers run no jobs; the ones that do sweep
    stop = threading.Event()
    _sweeper["stop"] = stop
    threading.Thread(target=_sweep_loop, args=(stop, queues), name="job-sweeper", daemon=True).start()


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    stop = _sweeper.pop("stop", None)
    if stop is not None:
        stop.set()
