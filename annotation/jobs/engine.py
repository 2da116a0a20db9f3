"""Running a job: chunks, progress, cancel and resume.

A runner is a function ``runner(ctx) -> dict`` registered for a job kind. It works in chunks and
calls ``ctx.save_progress(done, total, cursor)`` after each; that commits the progress, pushes it
to browsers, and raises :class:`Cancelled` if someone asked to cancel. Because progress and the
cursor are committed per chunk, a worker that dies loses at most the chunk in flight: the task
is delivered again (Celery's acks late, or the lease sweep of :func:`.services.jobs_sweep` when
the message is gone) and the runner resumes from ``ctx.cursor``. Each run holds a lease on the
job; a run that lost it (swept after its worker looked dead, or cancelled meanwhile) stops at
its next save and writes nothing more.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotation.common.exceptions import ApplicationError
from annotation.common.realtime import broadcast_on_commit, project_group

from .lease import Heartbeat, expired, fresh_lease, lease_info
from .models import Job
from .params import in_project

log = logging.getLogger(__name__)

# The job kinds, registered by the apps that own their work (``register_runner`` in a module
# their ``AppConfig.ready()`` imports, so that the web process and every worker know them all).
RUNNERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {}
# Which Celery queue a kind runs on: model work on the GPU batch workers, the rest on CPU.
QUEUES: dict[str, str] = {}
VALIDATORS: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
# Kinds that only their own app starts (a model import: the model upload); the jobs API
# refuses them.
INTERNAL: set[str] = set()
# kind → what a launcher's form shows of it (label, unit, stages, params; see
# ``register_runner``), read when asked: a form may depend on the deployment's settings.
FORMS: dict[str, Callable[[], dict[str, Any]]] = {}


class Cancelled(Exception):
    pass


class LeaseLost(Exception):
    """This run no longer owns the job (swept as dead, or cancelled after its worker looked
    gone): stop without touching the row, which another run or the canceller now owns."""


def register_runner(
    kind: str,
    queue: str = "default",
    validate: Callable[[dict[str, Any], Any], Any] | None = None,
    launchable: bool = True,
    form: Callable[[], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register the runner of a job kind. ``validate(params, dataset)``, if given, runs at
    launch (in the web process: no torch) and raises ``ApplicationError`` for bad parameters,
    so that the launcher gets a 400 naming the problem instead of a job that fails later.
    ``launchable=False``: the jobs API refuses the kind (its own app launches it). ``form()``:
    the kind on the Jobs page's launcher, ``{"label", "unit", "stages", "params", "order",
    ...}`` (params as ``inference.Param.as_dict`` writes them; ``order`` places it in the
    menu); a kind without one is launched elsewhere (the dataset page's Verify)."""

    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        # every kind, so that none can forget it: ids in its parameters stay in the job's project
        RUNNERS[kind] = in_project(fn)
        QUEUES[kind] = queue
        if validate is not None:
            VALIDATORS[kind] = validate
        if form is not None:
            FORMS[kind] = form
        if launchable:
            INTERNAL.discard(kind)
        else:
            INTERNAL.add(kind)
        return fn

    return wrap


def push_job(job: Job) -> None:
    broadcast_on_commit(
        project_group(job.project_id),
        "job.progress",
        {
            "job_id": job.id,
            "kind": job.kind,
            "state": job.state,
            "done": job.done,
            "total": job.total,
            "error": job.error,
            # long jobs (EXITS, training) name the stage they are in
            "stage": job.cursor.get("stage") if isinstance(job.cursor, dict) else None,
            "lease": lease_info(job),
        },
    )


@dataclass
class JobContext:
    job_id: int
    params: dict[str, Any]
    cursor: dict[str, Any]
    dataset_id: int | None
    worker: str = ""
    attempt: int = 0
    heartbeat: Heartbeat | None = None

    def owns(self, job: Job) -> bool:
        return (
            job.state == Job.State.RUNNING
            and job.worker == self.worker
            and job.attempts == self.attempt
        )

    def save_progress(self, done: int, total: int, cursor: dict[str, Any]) -> None:
        """Commit progress and renew the lease; raises :class:`Cancelled` when a cancel was
        asked, :class:`LeaseLost` when this run no longer owns the job."""
        if self.heartbeat is not None and self.heartbeat.lost:
            raise LeaseLost()
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            if not self.owns(job):
                raise LeaseLost()
            job.done, job.total, job.cursor = done, total, json_safe(cursor)
            for field, value in fresh_lease().items():
                setattr(job, field, value)
            job.save(
                update_fields=[
                    "done",
                    "total",
                    "cursor",
                    "heartbeat_at",
                    "lease_until",
                    "updated_at",
                ]
            )
            push_job(job)
            cancel = job.cancel_requested
        self.cursor = cursor
        if cancel:
            raise Cancelled()


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: PostgreSQL's json refuses them (a rate over
    zero items is NaN), and one bad float must not fail a job whose work is done."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _finish(ctx: JobContext, state: str, **fields: Any) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=ctx.job_id)
        if not ctx.owns(job):
            log.warning(
                "job %s: this run (%s, run %s) lost its lease; its %s is dropped",
                ctx.job_id,
                ctx.worker,
                ctx.attempt,
                state,
            )
            return
        job.state = state
        job.finished_at = timezone.now()
        job.lease_until = None
        for key, value in fields.items():
            setattr(job, key, value)
        job.save()
        push_job(job)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_execute(job_id: int, worker: str | None = None) -> str:
    """Run (or resume) job ``job_id`` to a final state; returns that state. ``worker`` names
    this run's holder in the lease (the Celery hostname)."""
    worker = worker or default_worker_name()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in (Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED):
            return job.state if job else "missing"
        if job.state == Job.State.RUNNING and not expired(job) and job.lease_until is not None:
            # a second delivery (a redelivered message after the sweep re-sent it): the run
            # that holds the lease goes on alone
            log.info("job %s is running on %s; this delivery is dropped", job_id, job.worker)
            return "running elsewhere"
        if job.cancel_requested:
            job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
            job.save()
            push_job(job)
            return job.state
        job.state = Job.State.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.worker, job.attempts = worker[:200], job.attempts + 1
        for field, value in fresh_lease().items():
            setattr(job, field, value)
        job.save()
        push_job(job)
        ctx = JobContext(
            job.id, dict(job.params), dict(job.cursor), job.dataset_id, job.worker, job.attempts
        )
        runner = RUNNERS.get(job.kind)
    if runner is None:
        _finish(ctx, Job.State.FAILED, error=f"no runner for job kind {job.kind!r} in this worker")
        return Job.State.FAILED
    try:
        with Heartbeat(job_id, ctx.worker, ctx.attempt) as ctx.heartbeat:
            result = runner(ctx)
    except LeaseLost:
        log.warning("job %s: this run lost its lease (its worker looked dead); stopped", job_id)
        return "lease lost"
    except Cancelled:
        _finish(ctx, Job.State.CANCELLED)
        return Job.State.CANCELLED
    except Exception as exc:
        log.exception("job %s failed", job_id)
        # a refusal meant for people (ApplicationError) reads as its message alone
        last = (
            exc.message
            if isinstance(exc, ApplicationError)
            else traceback.format_exception_only(type(exc), exc)[-1].strip()
        )
        _finish(ctx, Job.State.FAILED, error=last[:2000])
        return Job.State.FAILED
    _finish(ctx, Job.State.SUCCEEDED, result=json_safe(result))
    return Job.State.SUCCEEDED
