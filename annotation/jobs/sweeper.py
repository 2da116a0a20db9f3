"""The lease sweep every job worker runs (at start, then every half lease), so that no job stays
stuck on a dead worker. A worker sweeps the jobs of the queues it serves (the web process's
Jobs list, launch and cancel sweep any). Connected to Celery's worker signals by
:class:`.apps.JobsConfig`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)
_sweeper: dict[str, threading.Event] = {}


def _sweep_loop(stop: threading.Event, queues: set[str]) -> None:
    from django.db import connection

    from .lease import lease_s
    from .services import jobs_requeue_waiting, jobs_sweep

    try:
        # A (re)started platform: running jobs whose worker died come back (or fail), and
        # queued ones whose message a broker restart lost are sent again.
        jobs_sweep(queues=queues)
        requeued = jobs_requeue_waiting(queues)
        if requeued:
            log.info("queued jobs sent again at worker start: %s", requeued)
    except Exception:
        log.exception("job sweep at worker start failed")
    try:
        while not stop.wait(lease_s() / 2):
            try:
                swept = jobs_sweep(queues=queues)
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
    threading.Thread(
        target=_sweep_loop, args=(stop, queues), name="job-sweeper", daemon=True
    ).start()


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    stop = _sweeper.pop("stop", None)
    if stop is not None:
        stop.set()
