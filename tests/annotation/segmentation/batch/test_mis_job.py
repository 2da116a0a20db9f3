"""The ``mis`` job (MIS's proposals batch job, run by the generic proposals runner): proposals
of every image as pending pseudo labels, on a real worker."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.datasets import storage
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance
from tests.factories import add_images, make_world, wait_for_job

TINY = {"backbone": "tiny-effnet", "max_per_image": 5}


def _mis(dataset_id: int) -> list[Instance]:
    return list(Instance.objects.filter(image__dataset_id=dataset_id, source="mis"))


@pytest.mark.django_db(transaction=True)
def test_mis_job_on_a_real_worker_stores_scored_pending_proposals(celery_worker_proc):
    w = make_world()
    add_images(w.dataset, 2, start_seed=700)
    storage.media_path(w.other_image.file).write_bytes(b"broken")
    client = APIClient()
    client.force_login(w.users["owner"])
    url = f"/api/projects/{w.project.id}/jobs/"
    response = client.post(
        url, {"dataset_id": w.dataset.id, "kind": "mis", "params": TINY}, format="json"
    )
    assert response.status_code == 201, response.json()
    job = wait_for_job(response.json()["id"], {"succeeded", "failed"}, timeout=120)
    assert job.state == "succeeded", job.error
    assert (job.done, job.total) == (4, 4)
    # the broken file is reported; the three others have their proposals
    assert [e["image_id"] for e in job.result["errors"]] == [w.other_image.id]
    assert job.result["failed"] == 1
    found = _mis(w.dataset.id)
    assert len(found) == job.result["instances"] > 0
    assert len({i.image_id for i in found}) == 3 and w.other_image.id not in {
        i.image_id for i in found
    }
    assert all(i.pseudo and i.review_state == "pending" and 0 <= i.score <= 1 for i in found)
    assert all(i.model_name == "tiny-effnet" and i.model_version == f"job-{job.id}" for i in found)
    assert (
        max(sum(1 for i in found if i.image_id == img) for img in {i.image_id for i in found}) <= 5
    )
    assert all(i.area > 0 and i.mask["size"] == [i.image.height, i.image.width] for i in found)

    # a redelivered task that lost its cursor duplicates nothing
    Job.objects.filter(pk=job.pk).update(state="running", cursor={})
    assert job_execute(job.id) == "succeeded"
    assert len(_mis(w.dataset.id)) == len(found)
    assert Job.objects.get(pk=job.pk).result["skipped"] == 3
    # a new job on the same dataset leaves images that already have proposals alone
    again = client.post(
        url, {"dataset_id": w.dataset.id, "kind": "mis", "params": TINY}, format="json"
    ).json()
    again = wait_for_job(again["id"], {"succeeded", "failed"}, timeout=120)
    assert again.state == "succeeded" and again.result["instances"] == 0
    assert len(_mis(w.dataset.id)) == len(found)


@pytest.mark.django_db
def test_cancel_stops_between_images_and_keeps_what_was_done(monkeypatch, settings):
    from inference.methods.mis import jobs

    # The job row is not committed (one test transaction): the lease's heartbeat thread, on its
    # own connection, cannot see it and would report the lease lost after a third of a lease.
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_LEASE_S": 3600}
    w = make_world()
    add_images(w.dataset, 3, start_seed=800)
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="mis", params={**TINY, "label_id": w.label.id}
    )
    real = jobs.image_proposals
    calls: list[int] = []

    def first_then_cancel(*args, **kwargs):
        calls.append(1)
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "image_proposals", first_then_cancel)
    assert job_execute(job.id) == "cancelled"
    job.refresh_from_db()
    assert len(calls) == 1 and (job.done, job.total) == (1, 5)
    assert {i.image_id for i in _mis(w.dataset.id)} == {w.assigned_image.id}
    assert all(i.label_id == w.label.id for i in _mis(w.dataset.id))


@pytest.mark.django_db
def test_bad_parameters_fail_the_job_with_the_reason_and_one_active_job_per_dataset():
    w = make_world()
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="mis", params={"backbone": "nope"}
    )
    assert job_execute(job.id) == "failed"
    assert "backbone must be one of effnet-lite0, tiny-effnet, got 'nope'" in (
        Job.objects.get(pk=job.pk).error
    )
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="mis", params={"max_per_image": 0}
    )
    assert job_execute(job.id) == "failed"
    assert "max_per_image" in Job.objects.get(pk=job.pk).error
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="mis", params={**TINY, "label_id": 999999}
    )
    assert job_execute(job.id) == "failed"
    assert "label 999999 is not a label of this project" in Job.objects.get(pk=job.pk).error

    client = APIClient()
    client.force_login(w.users["manager"])
    url = f"/api/projects/{w.project.id}/jobs/"
    first = client.post(
        url, {"dataset_id": w.dataset.id, "kind": "mis", "params": TINY}, format="json"
    )
    assert first.status_code == 201
    second = client.post(
        url, {"dataset_id": w.dataset.id, "kind": "mis", "params": TINY}, format="json"
    )
    assert second.status_code == 409
    client.force_login(w.users["annotator"])
    assert client.post(
        url, {"dataset_id": w.dataset.id, "kind": "mis"}, format="json"
    ).status_code in (403, 404)


@pytest.mark.django_db
def test_bad_parameters_are_refused_at_launch_and_no_job_is_created():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["manager"])
    url = f"/api/projects/{w.project.id}/jobs/"
    for params, reason in (
        ({"max_per_image": 0}, "max_per_image"),
        ({"label_id": 999999}, "label 999999"),
        ({"nonsense": 1}, "unknown MIS proposals parameters"),
    ):
        response = client.post(
            url, {"dataset_id": w.dataset.id, "kind": "mis", "params": params}, format="json"
        )
        assert response.status_code == 400 and reason in response.json()["error"]["message"], (
            response.json()
        )
    response = client.post(
        url,
        {"dataset_id": w.dataset.id, "kind": "export", "params": {"format": "darknet"}},
        format="json",
    )
    assert (
        response.status_code == 400
        and "format must be one of" in response.json()["error"]["message"]
    )
    assert not Job.objects.filter(dataset=w.dataset).exists()
