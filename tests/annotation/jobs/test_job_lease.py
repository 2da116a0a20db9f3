"""Jobs whose worker is killed (kill -9) on the real stack: Postgres, Redis, Celery workers.

Each test starts its own workers with a slow ``verify`` runner (``slow_worker_app``) on a queue
of its own, a 2-second lease, and kills them mid-job. Without leases such a job stayed
``running`` forever: its message was gone, cancel only set a flag, and every new launch on the
dataset got 409.
"""

from __future__ import annotations

import os
import time

import pytest
from rest_framework.test import APIClient

from annotation.cli.services import stop_processes
from annotation.jobs import engine
from annotation.jobs.models import Job
from annotation.jobs.services import job_launch, jobs_sweep
from tests.conftest import start_worker
from tests.factories import make_world, wait_for_job

LEASE_S = 2
APP = "tests.annotation.jobs.slow_worker_app"


@pytest.fixture
def lease_env(settings, monkeypatch, tmp_path):
    """A short lease here and in the workers, and a queue of this test's own."""
    queue = f"lease-test-{os.getpid()}-{time.monotonic_ns()}"
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_LEASE_S": LEASE_S, "JOB_MAX_ATTEMPTS": 3}
    monkeypatch.setenv("MASKWRIGHT_JOB_LEASE_S", str(LEASE_S))
    monkeypatch.setenv("MASKWRIGHT_TEST_QUEUE", queue)
    monkeypatch.setitem(engine.QUEUES, "verify", queue)
    procs: list = []

    def worker(name: str, *, max_attempts: int = 3):
        monkeypatch.setenv("MASKWRIGHT_JOB_MAX_ATTEMPTS", str(max_attempts))
        settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_MAX_ATTEMPTS": max_attempts}
        proc = start_worker(
            f"{name}-{os.getpid()}", tmp_path / f"{name}.log", queues=queue, app=APP
        )
        procs.append(proc)
        return proc

    yield worker
    stop_processes(procs)


def _launch(world, **params) -> Job:
    return job_launch(
        dataset=world.dataset, kind="verify", params=params, user=world.users["owner"]
    )


def _wait_done(job_id: int, at_least: int, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.done >= at_least:
            return job
        time.sleep(0.05)
    raise AssertionError(
        f"job {job_id} did not reach {at_least}: {Job.objects.get(pk=job_id).__dict__}"
    )


def _kill(proc) -> None:
    proc.kill()  # SIGKILL: no shutdown handler runs, the message stays unacked
    proc.wait()


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_resumes_from_its_cursor_on_a_restarted_worker(lease_env):
    w = make_world()
    first = lease_env("lease-a")
    job = _launch(w, items=30, sleep=0.15)
    running = _wait_done(job.id, 3)
    assert running.state == "running" and running.worker.startswith("lease-a-")
    assert running.lease_until is not None and running.attempts == 1
    _kill(first)
    stopped_at = Job.objects.get(pk=job.id).done

    lease_env("lease-b")  # the restarted platform: its sweep finds the lease run out
    job = wait_for_job(job.id, {"succeeded", "failed", "cancelled"}, timeout=90)
    assert job.state == "succeeded", job.error
    assert job.done == 30 and job.attempts == 2 and job.worker.startswith("lease-b-")
    starts = job.result["starts"]
    assert starts[0] == 0 and len(starts) == 2 and 3 <= starts[1] <= stopped_at + 1, starts
    assert job.lease_until is None

    client = APIClient()
    client.force_login(w.users["owner"])
    body = client.get(f"/api/jobs/{job.id}/").json()
    assert body["attempts"] == 2 and body["worker"].startswith("lease-b-") and body["heartbeat_at"]
    assert body["lease"] is None  # ended


@pytest.mark.django_db(transaction=True)
def test_cancel_and_launch_are_not_blocked_by_a_job_whose_worker_is_gone(lease_env):
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    worker = lease_env("lease-c", max_attempts=1)
    job = _launch(w, items=40, sleep=0.15)
    _wait_done(job.id, 2)
    body = client.get(f"/api/jobs/{job.id}/").json()
    assert body["lease"]["status"] == "alive" and body["lease"]["last_beat_s"] < LEASE_S
    _kill(worker)
    time.sleep(LEASE_S + 0.5)
    body = client.get(f"/api/jobs/{job.id}/").json()
    assert body["state"] == "running" and body["lease"]["status"] == "lost"
    # cancel ends it at once: no worker would ever read the flag
    cancelled = client.post(f"/api/jobs/{job.id}/cancel/").json()
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]

    worker = lease_env("lease-d", max_attempts=1)
    second = _launch(w, items=40, sleep=0.15)
    stopped = _wait_done(second.id, 2)
    _kill(worker)
    time.sleep(LEASE_S + 0.5)
    # a new launch on the dataset: the dead job (out of runs) is failed with the reason, not a 409
    response = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "verify", "params": {"items": 3, "sleep": 0.01}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    second.refresh_from_db()
    assert second.state == "failed"
    assert f"stopped at {Job.objects.get(pk=second.id).done}/40; resumed 0 times" in second.error
    assert stopped.done <= second.done


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_long_chunk_alive_and_the_jobs_list_resumes_a_dead_job(lease_env):
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    # item 2 takes three leases: only the heartbeat thread renews the lease meanwhile
    worker = lease_env("lease-e")
    job = _launch(w, items=6, sleep=0.05, long_at=2, long_s=3 * LEASE_S)
    _wait_done(job.id, 2)
    deadline = time.monotonic() + 2 * LEASE_S
    while time.monotonic() < deadline:
        assert jobs_sweep() == []
        time.sleep(0.3)
    job = wait_for_job(job.id, {"succeeded", "failed"}, timeout=60)
    assert job.state == "succeeded" and job.attempts == 1, job.error

    # the Jobs list itself resumes a job whose worker is gone (no worker running the sweep)
    job = _launch(w, items=40, sleep=0.15)
    _wait_done(job.id, 2)
    _kill(worker)
    time.sleep(LEASE_S + 0.5)
    listed = {j["id"]: j for j in client.get(f"/api/projects/{w.project.id}/jobs/").json()}
    assert listed[job.id]["state"] == "queued" and listed[job.id]["lease"]["status"] == "resuming"
    lease_env("lease-f")
    job = wait_for_job(job.id, {"succeeded", "failed"}, timeout=90)
    assert job.state == "succeeded" and job.attempts == 2 and job.result["starts"][1] >= 2


@pytest.mark.django_db
def test_a_worker_sweeps_only_the_jobs_of_the_queues_it_serves(settings):
    from django.utils import timezone

    from annotation.jobs.services import jobs_sweep

    w = make_world()
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_MAX_ATTEMPTS": 3}
    lost = timezone.now() - timezone.timedelta(seconds=5)
    jobs = {
        queue: Job.objects.create(
            project=w.project,
            dataset=w.dataset,
            kind=kind,
            state=Job.State.RUNNING,
            queue=queue,
            lease_until=lost,
            attempts=1,
        )
        for queue, kind in (("batch", "mis"), ("default", "verify"))
    }
    assert jobs_sweep(queues={"default"}) == [jobs["default"].id]
    assert Job.objects.get(pk=jobs["batch"].id).state == Job.State.RUNNING  # not its queue
    assert jobs_sweep() == [jobs["batch"].id]  # the web process's sweep takes any
