"""Celery interface of the jobs app: ids in, the engine does the work."""
from celery import shared_task


@shared_task(name="annotation.jobs.tasks.job_run", acks_late=True, reject_on_worker_lost=True)
def job_run(job_id: int) -> str:
    from . import runners  # noqa: F401  (registers the runners in this worker)
    from .engine import job_execute

    return job_execute(job_id)


@shared_task(name="annotation.jobs.tasks.ping")
def ping() -> str:
    """Health check used by ``maskwright check``: answers from whichever worker takes it."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
