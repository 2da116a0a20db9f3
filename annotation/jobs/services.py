"""Writes for jobs: launch (enqueued after commit), cancel, and the sweep of jobs whose worker
is gone (:mod:`.lease`)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.common.exceptions import ApplicationError, Conflict

from .engine import QUEUES, RUNNERS, VALIDATORS, push_job
from .lease import expired as lease_expired
from .lease import expired_q, lost_reason, max_attempts
from .models import Job
from .params import check_ids_in_project

log = logging.getLogger(__name__)


def job_launch(
    *,
    dataset: Any | None,
    kind: str,
    params: dict[str, Any],
    user: Any,
    project_id: int | None = None,
) -> Job:
    """Create a job and enqueue it after the commit. ``dataset`` (a ``datasets.Dataset``) may
    be None for project-level work (importing a model file); then ``project_id`` names the
    project."""
    if dataset is not None:
        project_id = dataset.project_id
    if project_id is None:
        raise ApplicationError("a job needs a dataset or a project")
    if kind not in RUNNERS:
        raise ApplicationError(f"unknown job kind {kind!r} ({', '.join(sorted(RUNNERS))})")
    if not isinstance(params, dict):
        raise ApplicationError("params must be an object")
    # before the kind's own checks: an id of another project is refused before anything reads it
    check_ids_in_project(params, project_id)
    if kind in VALIDATORS:
        VALIDATORS[kind](params, dataset)
    job = _create(project_id=project_id, dataset=dataset, kind=kind, params=params, user=user)
    if job is None and dataset is not None and jobs_sweep(dataset_id=dataset.id, kind=kind):
        # the job in the way had lost its worker: it is failed now (or queued to resume, and
        # then it still holds the dataset)
        job = _create(project_id=project_id, dataset=dataset, kind=kind, params=params, user=user)
    if job is None:
        running = (
            Job.objects.filter(
                dataset=dataset, kind=kind, state__in=[Job.State.QUEUED, Job.State.RUNNING]
            )
            .values_list("id", flat=True)
            .first()
        )
        raise Conflict(
            f"job {running} ({kind}) is already queued or running on this dataset",
            extra={"job_id": running},
        )
    transaction.on_commit(lambda: _enqueue(job.id, job.queue))
    job.refresh_from_db()
    return job


def _create(
    *, project_id: int, dataset: Any | None, kind: str, params: dict[str, Any], user: Any
) -> Job | None:
    """The new job row, or None when an active job of the kind holds the dataset."""
    try:
        with transaction.atomic():
            job = Job.objects.create(
                project_id=project_id,
                dataset=dataset,
                kind=kind,
                queue=QUEUES[kind],
                params=params,
                launched_by=user,
            )
            push_job(job)
    except IntegrityError:
        return None
    return job


def _enqueue(job_id: int, queue: str) -> None:
    """Hand the job to Celery; if the broker cannot be reached, fail the job with the reason.

    Leaving it queued would block the dataset: one active job per kind is allowed.
    """
    from .tasks import job_run

    try:
        job_run.apply_async(args=[job_id], queue=queue, retry=False)
    except Exception as exc:  # noqa: BLE001 (kombu raises several kinds for an unreachable broker)
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            job.state, job.finished_at = Job.State.FAILED, timezone.now()
            job.error = f"could not reach the task queue (is Redis up?): {exc}"[:2000]
            job.save()
            push_job(job)


def job_cancel(*, job: Job) -> Job:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state == Job.State.QUEUED or (job.state == Job.State.RUNNING and lease_expired(job)):
            # Not started (a worker that picks it up later sees the state), or its worker is
            # gone (no lease renewal: nobody would ever read the flag): cancel at once.
            job.state, job.finished_at, job.cancel_requested = (
                Job.State.CANCELLED,
                timezone.now(),
                True,
            )
            job.lease_until = None
        elif job.state == Job.State.RUNNING:
            job.cancel_requested = True  # the runner stops after its current chunk
        else:
            raise ApplicationError(f"job {job.pk} has already {job.state}")
        job.save()
        push_job(job)
    return job


def jobs_sweep(
    *,
    project_id: int | None = None,
    dataset_id: int | None = None,
    kind: str | None = None,
    job_id: int | None = None,
    queues: set[str] | None = None,
) -> list[int]:
    """Queue again (to resume) or fail every running job in scope whose lease ran out; returns
    their ids. Rows another sweeper holds are skipped, so concurrent sweeps do not collide.
    ``queues``: only jobs launched on these (a worker sweeps the queues it serves: its own
    ``JOB_MAX_ATTEMPTS`` then agrees with the runs it would make)."""
    now = timezone.now()
    scope = {
        k: v
        for k, v in {
            "project_id": project_id,
            "dataset_id": dataset_id,
            "kind": kind,
            "pk": job_id,
        }.items()
        if v is not None
    }
    swept: list[int] = []
    with transaction.atomic():
        rows = Job.objects.select_for_update(skip_locked=True).filter(expired_q(now), **scope)
        if queues is not None:
            rows = rows.filter(queue__in=sorted(queues))
        for job in rows:
            if job.attempts < max_attempts():
                log.warning("job %s: %s; queued again", job.id, lost_reason(job))
                job.state = Job.State.QUEUED
                transaction.on_commit(lambda pk=job.id, q=job.queue: _enqueue(pk, q))
            else:
                log.warning("job %s: %s; failed", job.id, lost_reason(job))
                job.state, job.finished_at = Job.State.FAILED, now
                job.error = f"{lost_reason(job)} (the limit is {max_attempts()} runs)"
            job.lease_until = None
            job.save()
            push_job(job)
            swept.append(job.id)
    return swept


def jobs_requeue_waiting(queues: set[str]) -> list[int]:
    """Send every queued job of ``queues`` to Celery again. A worker runs it when it starts: the
    platform may have restarted with a broker that lost its messages. A job that also still
    has its first message runs once: the second delivery finds it running or finished."""
    ids = []
    waiting = Job.objects.filter(state=Job.State.QUEUED, queue__in=sorted(queues))
    for pk, queue in waiting.values_list("id", "queue"):
        _enqueue(pk, queue)
        ids.append(pk)
    return ids
