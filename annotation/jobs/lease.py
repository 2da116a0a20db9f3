"""Leases of running jobs: how the platform tells a slow job from one whose worker is gone.

A worker that runs a job holds a lease on it (``Job.worker``, ``lease_until``): the engine renews
it at each progress save and from a :class:`Heartbeat` thread, so that one long chunk does not
look like a dead worker. Nothing else proves a worker alive: after ``kill -9`` (or a lost
machine) the Celery message may be gone too (a Redis without persistence, or acks_late's
redelivery only after the broker's visibility timeout, an hour by default), so a job would stay
``running`` forever and block its dataset (one active job per kind).

:func:`.services.jobs_sweep` finds running jobs whose lease ran out and queues them again (they
resume from their cursor) or, after ``JOB_MAX_ATTEMPTS`` runs, fails them with the reason.
Workers run it at start and every half lease (:mod:`.sweeper`); the web runs it lazily where a
dead job would otherwise be shown or block: the Jobs list, a launch that conflicts, a cancel.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any, Self

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from .models import Job

log = logging.getLogger(__name__)


def lease_s() -> float:
    return float(settings.MASKWRIGHT.get("JOB_LEASE_S", 30))


def max_attempts() -> int:
    return int(settings.MASKWRIGHT.get("JOB_MAX_ATTEMPTS", 3))


def fresh_lease() -> dict[str, datetime]:
    """The fields of a lease taken or renewed now: a beat now, good for one lease."""
    now = timezone.now()
    return {"heartbeat_at": now, "lease_until": now + timedelta(seconds=lease_s())}


def renew(job_id: int, worker: str, attempt: int) -> bool:
    """Extend the lease of our run of the job; False when the run is no longer ours (the job
    was swept, cancelled, or taken by another run): the runner must then stop."""
    return bool(
        Job.objects.filter(
            pk=job_id, state=Job.State.RUNNING, worker=worker, attempts=attempt
        ).update(**fresh_lease())
    )


def expired(job: Job, now: datetime | None = None) -> bool:
    """A running job whose worker stopped renewing its lease. Rows from before leases existed
    have none: they count as expired once they have not changed for a lease."""
    now = now or timezone.now()
    if job.state != Job.State.RUNNING:
        return False
    if job.lease_until is None:
        return job.updated_at < now - timedelta(seconds=lease_s())
    return job.lease_until < now


def expired_q(now: datetime) -> Q:
    stale = now - timedelta(seconds=lease_s())
    return Q(state=Job.State.RUNNING) & (
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, updated_at__lt=stale)
    )


def lost_reason(job: Job) -> str:
    return (
        f"its worker {job.worker or '(unknown)'} stopped at {job.done}/{job.total}; "
        f"resumed {max(job.attempts - 1, 0)} times"
    )


class Heartbeat:
    """Renews a run's lease from a daemon thread every third of a lease, between the runner's
    own progress saves. Dies with the process, which is the point: a killed worker stops
    renewing."""

    def __init__(self, job_id: int, worker: str, attempt: int) -> None:
        self.job_id, self.worker, self.attempt = job_id, worker, attempt
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{job_id}-lease", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(lease_s() / 3):
                try:
                    if not renew(self.job_id, self.worker, self.attempt):
                        self.lost = True  # save_progress sees it too and stops the runner
                        return
                except Exception:  # a database blip: the next beat tries again
                    log.exception("could not renew the lease of job %s", self.job_id)
        finally:
            connection.close()  # this thread's own connection


def lease_info(job: Job, now: datetime | None = None) -> dict[str, Any] | None:
    """What the Jobs page says about the job's worker: ``alive`` (with seconds since its last
    beat), ``lost`` (lease ran out, a sweep will resume or fail it) or ``resuming`` (queued
    again after a lost worker). None for jobs that never ran or ended."""
    now = now or timezone.now()
    if job.state == Job.State.QUEUED and job.attempts:
        status = "resuming"
    elif job.state == Job.State.RUNNING:
        status = "lost" if expired(job, now) else "alive"
    else:
        return None
    beat = job.heartbeat_at
    return {
        "status": status,
        "worker": job.worker,
        "attempts": job.attempts,
        "max_attempts": max_attempts(),
        "last_beat_s": round((now - beat).total_seconds(), 1) if beat else None,
        "lease_until": job.lease_until.isoformat() if job.lease_until else None,
    }
