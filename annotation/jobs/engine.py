"""Running a job: chunks, progress, cancel and resume.

A runner is a function ``runner(ctx) -> dict`` registered for a job kind. It works in chunks and
calls ``ctx.save_progress(done, total, cursor)`` after each; that commits the progress, pushes it
to browsers, and raises :class:`Cancelled` if someone asked to cancel. Because progress and the
cursor are committed per chunk, a worker that dies loses at most the chunk in flight: Celery
redelivers the task (acks late) and the runner resumes from ``ctx.cursor``.
"""
from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotation.common.realtime import broadcast_on_commit, project_group

from .models import Job

log = logging.getLogger(__name__)

RUNNERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {}
# Which Celery queue a kind runs on: model work on the GPU batch workers, the rest on CPU.
QUEUES: dict[str, str] = {}
VALIDATORS: dict[str, Callable[[dict[str, Any], Any], Any]] = {}


class Cancelled(Exception):
    pass


def register_runner(
    kind: str, queue: str = "default", validate: Callable[[dict[str, Any], Any], Any] | None = None
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register the runner of a job kind. ``validate(params, dataset)``, if given, runs at
    launch (in the web process: no torch) and raises ``ApplicationError`` for bad parameters,
    so that the launcher gets a 400 naming the problem instead of a job that fails later."""

    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        RUNNERS[kind] = fn
        QUEUES[kind] = queue
        if validate is not None:
            VALIDATORS[kind] = validate
        return fn

    return wrap


def push_job(job: Job) -> None:
    broadcast_on_commit(
        project_group(job.project_id),
        "job.progress",
        {
            "job_id": job.id, "kind": job.kind, "state": job.state, "done": job.done,
            "total": job.total, "error": job.error,
            # long jobs (EXITS, training) name the stage they are in
            "stage": job.cursor.get("stage") if isinstance(job.cursor, dict) else None,
        },
    )


@dataclass
class JobContext:
    job_id: int
    params: dict[str, Any]
    cursor: dict[str, Any]
    dataset_id: int | None

    def save_progress(self, done: int, total: int, cursor: dict[str, Any]) -> None:
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            job.done, job.total, job.cursor = done, total, json_safe(cursor)
            job.save(update_fields=["done", "total", "cursor", "updated_at"])
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


def _finish(job_id: int, state: str, **fields: Any) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.state = state
        job.finished_at = timezone.now()
        for key, value in fields.items():
            setattr(job, key, value)
        job.save()
        push_job(job)


def job_execute(job_id: int) -> str:
    """Run (or resume) job ``job_id`` to a final state; returns that state."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in (Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED):
            return job.state if job else "missing"
        if job.cancel_requested:
            job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
            job.save()
            push_job(job)
            return job.state
        job.state = Job.State.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save()
        push_job(job)
        ctx = JobContext(job.id, dict(job.params), dict(job.cursor), job.dataset_id)
        runner = RUNNERS.get(job.kind)
    if runner is None:
        _finish(job_id, Job.State.FAILED, error=f"no runner for job kind {job.kind!r} in this worker")
        return Job.State.FAILED
    try:
        result = runner(ctx)
    except Cancelled:
        _finish(job_id, Job.State.CANCELLED)
        return Job.State.CANCELLED
    except Exception as exc:
        log.exception("job %s failed", job_id)
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        _finish(job_id, Job.State.FAILED, error=last[:2000])
        return Job.State.FAILED
    _finish(job_id, Job.State.SUCCEEDED, result=json_safe(result))
    return Job.State.SUCCEEDED
