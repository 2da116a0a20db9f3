"""Celery interface of the jobs app: ids in, the engine does the work. (The lease sweep every
worker runs is in :mod:`.sweeper`.)"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(
    name="annotation.jobs.tasks.job_run", acks_late=True, reject_on_worker_lost=True, bind=True
)
def job_run(self: Any, job_id: int) -> str:
    # the kinds' runners were registered when Django loaded (each app's AppConfig.ready())
    from .engine import job_execute

    return job_execute(job_id, worker=self.request.hostname)


@shared_task(name="annotation.jobs.tasks.ping")
def ping() -> str:
    """Health check used by ``maskwright check``: answers from whichever worker takes it."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
