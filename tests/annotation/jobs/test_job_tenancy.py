"""Every id in a job's parameters names a row of the job's own project: refused at launch
(400, the house error shape) and again when a worker runs the job, before anything loads."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.datasets.services import dataset_create
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.modelstore.models import TrainedModel
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.factories import add_images, make_world

pytestmark = pytest.mark.django_db

# What a model's file would hold: a loader that got this far names them in its error.
STATE_DICT_KEYS = "pixel_decoder.input_proj.0.weight"


def _tenants():
    """Project A (the world of ``make_world``) with a ready default DynaMITe model, and
    project B of another owner with a dataset of its own."""
    w = make_world()
    model_a = TrainedModel.objects.create(
        project=w.project,
        method="dynamite",
        name="A's model",
        file="models/a/missing.safetensors",
        state=TrainedModel.State.READY,
        origin=TrainedModel.Origin.TRAINED,
        is_default=True,
        config={"note": STATE_DICT_KEYS},
    )
    owner_b = User.objects.create_user(username="owner_b", password="pw-12345678")
    project_b = project_create(name="Cats", owner=owner_b)
    dataset_b = dataset_create(project=project_b, name="set B")
    add_images(dataset_b, 1, start_seed=500)
    label_create(project=project_b, name="cat", color="#00ff00")
    return w, model_a, owner_b, project_b, dataset_b


def _unchanged(model: TrainedModel) -> None:
    fresh = TrainedModel.objects.get(pk=model.pk)
    assert (fresh.state, fresh.is_default, fresh.error) == ("ready", True, "")


def test_a_launch_naming_another_projects_rows_is_refused():
    w, model_a, owner_b, project_b, dataset_b = _tenants()
    client = APIClient()
    client.force_login(owner_b)
    url = f"/api/projects/{project_b.id}/jobs/"
    cases = [
        (
            "train",
            {"init_model_id": model_a.id},
            f"model {model_a.id} is not a model of this project",
        ),
        (
            "train",
            {"init_model_id": str(model_a.id)},
            f"model {model_a.id} is not a model of this project",
        ),
        ("mis", {"label_id": w.label.id}, f"label {w.label.id} is not a label of this project"),
        (
            "verify",
            {"image_ids": [w.assigned_image.id]},
            f"image {w.assigned_image.id} is not an image of this project",
        ),
        (
            "verify",
            {"options": {"dataset_id": w.dataset.id}},
            f"dataset {w.dataset.id} is not a dataset of this project",
        ),
        ("verify", {"job_id": 1}, "unknown id parameter 'job_id'"),
    ]
    for kind, params, message in cases:
        response = client.post(
            url, {"dataset_id": dataset_b.id, "kind": kind, "params": params}, format="json"
        )
        assert response.status_code == 400, (kind, params, response.json())
        assert response.json() == {"error": {"code": "invalid", "message": message, "detail": {}}}
    # a foreign id reads exactly like one that does not exist
    response = client.post(
        url,
        {"dataset_id": dataset_b.id, "kind": "train", "params": {"init_model_id": 987654}},
        format="json",
    )
    assert response.json()["error"]["message"] == "model 987654 is not a model of this project"
    # a model import is the model upload's own job: no launcher names one, own model or not
    for model_id in (model_a.id, 987654):
        response = client.post(
            url,
            {"dataset_id": dataset_b.id, "kind": "model_import", "params": {"model_id": model_id}},
            format="json",
        )
        assert response.status_code == 400 and "kind" in response.json()["error"]["detail"], (
            response.json()
        )
    assert not Job.objects.filter(project=project_b).exists()
    _unchanged(model_a)
    # A's own owner may name it (the check is about the project, not the id)
    own = APIClient()
    own.force_login(w.users["owner"])
    response = own.post(
        f"/api/projects/{w.project.id}/jobs/",
        {
            "dataset_id": w.dataset.id,
            "kind": "mis",
            "params": {"label_id": w.label.id, "backbone": "tiny-effnet"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_the_runner_refuses_a_job_naming_another_projects_model_before_loading_it():
    """A job row that got past the launch (an older version, a direct insert) fails when it
    runs: A's default model stays ready and B's job error says nothing of A's file."""
    _w, model_a, owner_b, project_b, _dataset_b = _tenants()
    job = Job.objects.create(
        project=project_b,
        dataset=None,
        kind="model_import",
        params={"model_id": model_a.id},
        launched_by=owner_b,
    )
    assert job_execute(job.id) == "failed"
    job.refresh_from_db()
    assert f"model {model_a.id} is not a model of this project" in job.error
    assert STATE_DICT_KEYS not in job.error and "missing.safetensors" not in job.error
    _unchanged(model_a)


def test_the_runner_refuses_a_dataset_of_another_project():
    w, _model_a, owner_b, project_b, _dataset_b = _tenants()
    job = Job.objects.create(
        project=project_b, dataset=w.dataset, kind="verify", params={}, launched_by=owner_b
    )
    assert job_execute(job.id) == "failed"
    job.refresh_from_db()
    assert f"dataset {w.dataset.id} is not a dataset of this project" in job.error
    assert job.done == 0 and job.result == {}
    # the same job in its own project runs
    own = Job.objects.create(
        project=w.project,
        dataset=w.dataset,
        kind="verify",
        params={"image_ids": [w.assigned_image.id]},
        launched_by=w.users["owner"],
    )
    assert job_execute(own.id) == "succeeded"
    assert Job.objects.get(pk=own.pk).result["checked"] == 2
