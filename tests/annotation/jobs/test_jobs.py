"""Jobs on a real Celery worker: progress to the end, cancel, one active job per kind."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from annotation.datasets import storage
from annotation.jobs.engine import JobContext, job_execute
from annotation.jobs.models import Job
from tests.factories import add_images, make_world, wait_for_job


@pytest.mark.django_db(transaction=True)
def test_verify_job_runs_on_a_real_worker_and_rebuilds_thumbnails(celery_worker_proc):
    w = make_world()
    add_images(w.dataset, 3, start_seed=500)
    storage.media_path(w.assigned_image.thumbnail).unlink()
    client = APIClient()
    client.force_login(w.users["manager"])
    response = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "verify"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["state"] == "queued"
    job = wait_for_job(response.json()["id"], {"succeeded", "failed"})
    assert job.state == "succeeded", job.error
    assert (job.done, job.total) == (5, 5)
    assert job.result["thumbnails_rebuilt"] == 1 and job.result["problems"] == []
    assert storage.media_path(w.assigned_image.thumbnail).exists()
    assert job.started_at and job.finished_at
    body = client.get(f"/api/jobs/{job.id}/").json()
    assert body["progress"] == 1.0


@pytest.mark.django_db(transaction=True)
def test_a_broken_file_is_reported_not_fatal(celery_worker_proc):
    w = make_world()
    storage.media_path(w.other_image.file).write_bytes(b"broken")
    client = APIClient()
    client.force_login(w.users["owner"])
    job_id = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "verify"},
        format="json",
    ).json()["id"]
    job = wait_for_job(job_id, {"succeeded", "failed"})
    assert job.state == "succeeded"
    assert [p["image_id"] for p in job.result["problems"]] == [w.other_image.id]


@pytest.mark.django_db
def test_one_active_job_per_kind_and_dataset_and_cancel_of_a_queued_job():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    url = f"/api/projects/{w.project.id}/jobs/"
    first = client.post(url, {"dataset_id": w.dataset.id, "kind": "verify"}, format="json").json()
    second = client.post(url, {"dataset_id": w.dataset.id, "kind": "verify"}, format="json")
    assert second.status_code == 409 and f"job {first['id']}" in second.json()["error"]["message"]
    cancelled = client.post(f"/api/jobs/{first['id']}/cancel/").json()
    assert cancelled["state"] == "cancelled"
    assert client.post(f"/api/jobs/{first['id']}/cancel/").status_code == 400
    # the worker that picks the cancelled job up later leaves it cancelled
    assert job_execute(first["id"]) == "cancelled"
    assert (
        client.post(url, {"dataset_id": w.dataset.id, "kind": "verify"}, format="json").status_code
        == 201
    )


@pytest.mark.django_db
def test_unknown_kinds_and_unusable_launches_are_refused():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    url = f"/api/projects/{w.project.id}/jobs/"
    assert (
        client.post(url, {"dataset_id": w.dataset.id, "kind": "bake"}, format="json").status_code
        == 400
    )
    response = client.post(url, {"dataset_id": w.dataset.id, "kind": "exits"}, format="json")
    assert (
        response.status_code == 400
        and "no objects to work on" in response.json()["error"]["message"]
    )
    response = client.post(url, {"dataset_id": 999999, "kind": "verify"}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_running_job_cancels_between_chunks_and_resumes_from_its_cursor(monkeypatch):
    from annotation.jobs import engine

    w = make_world()
    job = Job.objects.create(project=w.project, dataset=w.dataset, kind="verify")
    calls: list[dict] = []

    def runner(ctx: JobContext) -> dict:
        calls.append(dict(ctx.cursor))
        start = ctx.cursor.get("i", 0)
        for i in range(start, 4):
            if i == 2 and not calls[1:]:
                raise RuntimeError("worker crashed")  # first run dies after two chunks
            ctx.save_progress(i + 1, 4, {"i": i + 1})
        return {"ok": True}

    monkeypatch.setitem(engine.RUNNERS, "verify", runner)
    assert job_execute(job.id) == "failed"
    job.refresh_from_db()
    assert (job.done, job.cursor, job.error) == (2, {"i": 2}, "RuntimeError: worker crashed")
    # a redelivered task resumes from the cursor (here: put back to running by hand)
    Job.objects.filter(pk=job.pk).update(state="running")
    assert job_execute(job.id) == "succeeded"
    assert calls[1] == {"i": 2}
    job.refresh_from_db()
    assert job.done == 4 and job.result == {"ok": True}

    job2 = Job.objects.create(project=w.project, dataset=w.dataset, kind="verify")

    def slow(ctx: JobContext) -> dict:
        Job.objects.filter(pk=ctx.job_id).update(cancel_requested=True)
        ctx.save_progress(1, 10, {"i": 1})
        raise AssertionError("save_progress should have raised Cancelled")

    monkeypatch.setitem(engine.RUNNERS, "verify", slow)
    assert job_execute(job2.id) == "cancelled"
    job2.refresh_from_db()
    assert job2.done == 1 and job2.state == "cancelled"


def _fresh_pools(app) -> None:
    """Forget the closed connection pools (kombu keeps one per broker URL process-wide), so
    that later tests in this process can publish again."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_unreachable_broker_fails_the_job_with_the_reason_and_frees_the_dataset(settings):
    from config.celery_app import app

    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    good = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        app.pool.force_close_all()  # drop pooled connections to the real broker
        _fresh_pools(app)  # a closed pool refuses every later acquire
        response = client.post(
            f"/api/projects/{w.project.id}/jobs/",
            {"dataset_id": w.dataset.id, "kind": "verify"},
            format="json",
        )
    finally:
        app.conf.broker_url = good
        app.pool.force_close_all()
        _fresh_pools(app)
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "failed" and "could not reach the task queue" in body["error"]
    # the dataset is not blocked by a job that never reached a worker
    assert Job.objects.filter(dataset=w.dataset, state__in=["queued", "running"]).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_lost_job_resumes_on_the_queue_it_was_launched_on(monkeypatch):
    """Whoever sweeps it (a worker that routes the kind elsewhere, or does not know it), the
    resume goes where the launch sent it: the message lands in that queue's Redis list."""
    from datetime import timedelta

    from django.utils import timezone

    from annotation.jobs import engine
    from annotation.jobs.services import job_launch, jobs_sweep
    from annotation.segmentation.interactive.keys import redis_client

    queue = f"launched-here-{time.monotonic_ns()}"
    monkeypatch.setitem(engine.QUEUES, "verify", queue)
    w = make_world()
    job = job_launch(dataset=w.dataset, kind="verify", params={}, user=w.users["owner"])
    assert job.queue == queue and redis_client().llen(queue) == 1
    redis_client().delete(queue)
    # its worker died mid-run; this process now routes the kind to another queue
    Job.objects.filter(pk=job.pk).update(
        state="running", attempts=1, worker="gone@host", lease_until=timezone.now() - timedelta(1)
    )
    monkeypatch.setitem(engine.QUEUES, "verify", "default")
    assert jobs_sweep(job_id=job.pk) == [job.pk]
    assert Job.objects.get(pk=job.pk).state == "queued"
    assert redis_client().llen(queue) == 1
    redis_client().delete(queue)
