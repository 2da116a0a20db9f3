"""EXITS and DynaMITe training as jobs on a real worker: pseudo masks land pending, the trained
networks become models of the project, a redelivered task duplicates nothing."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotation.common import rle
from annotation.datasets import storage
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance, Source
from annotation.labeling.services import instance_create, prompt_append
from annotation.modelstore.models import TrainedModel
from tests.factories import add_images, box_mask, make_world, wait_for_job

EXITS_TINY = {"encoder": "tiny-conv", "crop_size": 64, "warmup_epochs": 1, "epochs": 1}
TRAIN_TINY = {
    "backbone": "tiny",
    "steps": 3,
    "crop_size": 128,
    "checkpoint_every": 2,
    "eval_images": 2,
}


def _outline(image, x0, y0, x1, y1, label_id=None):
    """An object drawn with the extreme-points tool: an instance and its four points."""
    inst = instance_create(
        image=image, mask=rle.encode(np.zeros((image.height, image.width), bool)), label_id=label_id
    )
    xm, ym = (x0 + x1) // 2, (y0 + y1) // 2
    prompt_append(
        instance=inst,
        kind="extreme_points",
        payload={"points": [[xm, y0], [x0, ym], [xm, y1 - 1], [x1 - 1, ym]]},
    )
    return inst


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_launch_checks_refuse_bad_parameters_and_empty_inputs():
    w = make_world()
    client = _client(w.users["owner"])
    url = f"/api/projects/{w.project.id}/jobs/"

    def launch(kind, params):
        return client.post(
            url, {"dataset_id": w.dataset.id, "kind": kind, "params": params}, format="json"
        )

    response = launch("exits", {})
    assert (
        response.status_code == 400
        and "no objects to work on" in response.json()["error"]["message"]
    )
    assert launch("exits", {"crop_size": 100}).status_code == 400
    assert launch("exits", {"encoder": "resnet"}).status_code == 400
    assert launch("train", {"backbone": "vgg"}).status_code == 400
    assert launch("train", {"sources": "exits"}).status_code == 400  # no EXITS masks yet
    unknown = launch("train", {"sources": "nonesuch"})
    assert unknown.status_code == 400
    message = unknown.json()["error"]["message"]
    assert "sources must be one of accepted, " in message and "opencv-grabcut" in message
    # a registered method's pseudo labels, described by its label
    empty = launch("train", {"sources": "opencv-grabcut"})
    assert (
        empty.status_code == 400
        and "GrabCut (baseline): pseudo labels" in empty.json()["error"]["message"]
    )
    response = launch("train", {"init_model_id": 12345})
    # refused by the launch's project check of every id (as for a model of another project)
    assert response.status_code == 400
    assert "model 12345 is not a model of this project" in response.json()["error"]["message"]
    assert (
        _client(w.users["annotator"])
        .post(url, {"dataset_id": w.dataset.id, "kind": "train"}, format="json")
        .status_code
        == 403
    )
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_exits_job_writes_pending_scored_masks_and_keeps_its_generator(celery_worker_proc):
    w = make_world()
    images = [w.assigned_image, w.other_image, *add_images(w.dataset, 2, start_seed=900)]
    outlined = [_outline(im, 8, 6, 40, 30, w.label.id) for im in images]
    imported = instance_create(
        image=images[2], mask=box_mask(images[2], 20, 10, 60, 40), source=Source.IMPORT
    )
    broken = add_images(w.dataset, 1, start_seed=990)[0]
    _outline(broken, 8, 6, 40, 30)
    storage.media_path(broken.file).write_bytes(b"broken")  # fails its own object, not the job
    client = _client(w.users["manager"])
    response = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "exits", "params": EXITS_TINY},
        format="json",
    )
    assert response.status_code == 201, response.json()
    job = wait_for_job(response.json()["id"], {"succeeded", "failed"}, timeout=180)
    assert job.state == "succeeded", job.error
    assert job.done == job.total > 0 and job.result["objects"] == len(outlined) + 1
    assert [e["image_id"] for e in job.result["errors"]] == [broken.id] and job.result[
        "failed"
    ] == 1
    found = list(Instance.objects.filter(source="exits"))
    assert len(found) == job.result["instances"] and 0 < len(found) <= 5
    assert all(
        i.pseudo
        and i.review_state == "pending"
        and 0 <= i.score <= 1
        and i.model_version == f"job-{job.id}"
        for i in found
    )
    assert {i.label_id for i in found} <= {w.label.id, None}
    assert imported.id not in {i.id for i in found}
    model = TrainedModel.objects.get(job=job)
    assert model.method == "exits" and model.state == "ready" and model.origin == "trained"

    # a redelivered task finds the work done: no duplicate masks, no second model
    Job.objects.filter(pk=job.pk).update(state="running", cursor={})
    assert job_execute(job.id) == "succeeded"
    assert Instance.objects.filter(source="exits").count() == len(found)
    assert TrainedModel.objects.filter(job=job).count() == 1


@pytest.mark.django_db(transaction=True)
def test_training_job_trains_evaluates_and_registers_a_model(celery_worker_proc):
    w = make_world()
    for i, image in enumerate(add_images(w.dataset, 8, start_seed=950)):
        instance_create(
            image=image, mask=box_mask(image, 4 + i, 5, 30 + i, 28), label_id=w.label.id
        )
    client = _client(w.users["owner"])
    response = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {"dataset_id": w.dataset.id, "kind": "train", "params": TRAIN_TINY},
        format="json",
    )
    assert response.status_code == 201, response.json()
    job = wait_for_job(response.json()["id"], {"succeeded", "failed"}, timeout=240)
    assert job.state == "succeeded", job.error
    assert job.done == job.total == 3 + 2
    model = TrainedModel.objects.get(pk=job.result["model_id"])
    assert (
        model.method == "dynamite" and model.state == "ready" and model.config["backbone"] == "tiny"
    )
    m = model.metrics
    assert m["train_steps"] == 3 and m["eval_images"] == 2 and m["nci"] >= 1 and 0 <= m["miou"] <= 1
    # the model can be the project's default, and the annotation page then offers it
    assert client.post(f"/api/models/{model.id}/default/").json()["is_default"] is True
    from annotation.labeling.live import offered_methods

    assert {"name": "dynamite", "backbones": [f"model-{model.id}"]}.items() <= next(
        m for m in offered_methods(w.project.id) if m["name"] == "dynamite"
    ).items()


@pytest.mark.django_db
def test_a_cancel_stops_training_after_the_step_in_flight_and_a_restart_resumes(settings):
    """In process: the cancel is read at the next progress report; a job a dead worker left
    running resumes from the checkpoint the interrupted run wrote."""
    from annotation.jobs.engine import JobContext, job_execute

    # The job row is not committed (one test transaction): the lease's heartbeat thread, on its
    # own connection, cannot see it and would report the lease lost after a third of a lease.
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "JOB_LEASE_S": 3600}
    w = make_world()
    for i, image in enumerate(add_images(w.dataset, 4, start_seed=970)):
        instance_create(
            image=image, mask=box_mask(image, 4 + i, 5, 30 + i, 28), label_id=w.label.id
        )
    params = {**TRAIN_TINY, "steps": 4, "checkpoint_every": 1, "eval_images": 0}
    job = Job.objects.create(project=w.project, dataset=w.dataset, kind="train", params=params)
    from annotation.jobs import engine

    real = engine.RUNNERS["train"]

    def cancel_after_two(ctx: JobContext):
        original = ctx.save_progress

        def save(done, total, cursor):
            if done == 2:
                Job.objects.filter(pk=ctx.job_id).update(cancel_requested=True)
            original(done, total, cursor)

        ctx.save_progress = save
        return real(ctx)

    engine.RUNNERS["train"] = cancel_after_two
    try:
        assert job_execute(job.id) == "cancelled"
    finally:
        engine.RUNNERS["train"] = real
    job.refresh_from_db()
    assert job.done == 2 and not TrainedModel.objects.filter(job=job).exists()
    # a worker restart (the task redelivered, the job still marked running) resumes and ends
    Job.objects.filter(pk=job.pk).update(state="running", cancel_requested=False)
    assert job_execute(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.result["resumed_from"] >= 1 and job.result["metrics"]["train_steps"] == 4
    assert TrainedModel.objects.filter(job=job).count() == 1
