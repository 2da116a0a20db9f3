"""Writes for jobs: launch (enqueued after commit) and cancel."""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.common.exceptions import ApplicationError, Conflict
from annotation.datasets.models import Dataset

from .engine import QUEUES, RUNNERS, VALIDATORS, push_job
from .lease import expired as lease_expired
from .lease import jobs_sweep
from .models import Job
from .params import check_ids_in_project


def _ensure_runners() -> None:
    from . import runners  # noqa: F401  (registers the runners)


def job_launch(*, dataset: Dataset | None, kind: str, params: dict[str, Any], user: Any,
               project_id: int | None = None) -> Job:
    """Create a job and enqueue it after the commit. ``dataset`` may be None for project-level
    work (importing a model file); then ``project_id`` names the project."""
    _ensure_runners()
    if dataset is not None:
        project_id = dataset.project_id
    if project_id is None:
        raise ApplicationError("a job needs a dataset or a project")
    if kind not in Job.Kind.values:
        raise ApplicationError(f"unknown job kind {kind!r}")
    if kind not in RUNNERS:
        raise ApplicationError(f"job kind {kind!r} is not available in this version")
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
        running = Job.objects.filter(
            dataset=dataset, kind=kind, state__in=[Job.State.QUEUED, Job.State.RUNNING]
        ).values_list("id", flat=True).first()
        raise Conflict(
            f"job {running} ({kind}) is already queued or running on this dataset",
            extra={"job_id": running},
        )
    transaction.on_commit(lambda: _enqueue(job.id, QUEUES[kind]))
    job.refresh_from_db()
    return job


def _create(*, project_id: int, dataset: Dataset | None, kind: str, params: dict[str, Any],
            user: Any) -> Job | None:
    """The new job row, or None when an active job of the kind holds the dataset."""
    try:
        with transaction.atomic():
            job = Job.objects.create(
                project_id=project_id, dataset=dataset, kind=kind, params=params,
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
            job.state, job.finished_at, job.cancel_requested = Job.State.CANCELLED, timezone.now(), True
            job.lease_until = None
        elif job.state == Job.State.RUNNING:
            job.cancel_requested = True  # the runner stops after its current chunk
        else:
            raise ApplicationError(f"job {job.pk} has already {job.state}")
        job.save()
        push_job(job)
    return job
