"""Trained models: upload checks, permissions, default per method, delete."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from annotation.datasets import storage
from annotation.jobs.models import Job
from annotation.modelstore.models import TrainedModel
from tests.factories import make_world


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _upload(client, project_id, name="ckpt.pth", data=b"not really a checkpoint", **fields):
    f = io.BytesIO(data)
    f.name = name
    return client.post(
        f"/api/projects/{project_id}/models/",
        {"method": "dynamite", "file": f, **fields},
        format="multipart",
    )


@pytest.mark.django_db
def test_upload_stores_the_file_and_queues_an_import_job():
    w = make_world()
    response = _upload(
        _client(w.users["owner"]), w.project.id, name="dynamite_swin_tiny.pth", backbone="swin_tiny"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (
        body["state"] == "importing" and body["origin"] == "uploaded" and body["size_bytes"] == 23
    )
    assert body["config"] == {"backbone": "swin_tiny"} and body["name"] == "dynamite_swin_tiny"
    model = TrainedModel.objects.get(pk=body["id"])
    assert storage.media_path(model.file).read_bytes() == b"not really a checkpoint"
    job = Job.objects.get(pk=body["job"])
    assert (
        job.kind == "model_import"
        and job.dataset_id is None
        and job.params == {"model_id": model.id}
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": "weights.exe"}, "a file ending in .safetensors"),
        ({"data": b""}, "empty"),
        ({"method": "sam"}, "method must be one that takes a model file (dynamite, exits)"),
        (
            {"method": "m2n2"},
            "method must be one that takes a model file",
        ),  # registered, takes none
        ({"method": "exits", "name": "generator.pth"}, "an EXITS generator"),
        ({"backbone": "vgg16"}, "backbone must be one of"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(fields, message):
    w = make_world()
    client = _client(w.users["owner"])
    f = io.BytesIO(fields.get("data", b"x" * 10))
    f.name = fields.get("name", "a.pth")
    body = {"method": fields.get("method", "dynamite"), "file": f}
    if "backbone" in fields:
        body["backbone"] = fields["backbone"]
    response = client.post(f"/api/projects/{w.project.id}/models/", body, format="multipart")
    assert response.status_code == 400 and message in response.json()["error"]["message"]
    assert not TrainedModel.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db
def test_only_admins_upload_and_only_project_members_see_models():
    w = make_world()
    assert _upload(_client(w.users["annotator"]), w.project.id).status_code == 403
    assert _upload(_client(w.users["reviewer"]), w.project.id).status_code == 403
    assert _upload(_client(w.users["outsider"]), w.project.id).status_code == 404
    model = TrainedModel.objects.create(
        project=w.project, method="dynamite", name="m", state="ready", origin="trained"
    )
    assert _client(w.users["outsider"]).get(f"/api/models/{model.id}/").status_code == 404
    assert (
        _client(w.users["annotator"]).get(f"/api/projects/{w.project.id}/models/").status_code
        == 403
    )
    listed = _client(w.users["reviewer"]).get(f"/api/projects/{w.project.id}/models/").json()
    assert [m["id"] for m in listed] == [model.id]
    assert _client(w.users["reviewer"]).post(f"/api/models/{model.id}/default/").status_code == 403
    assert _client(w.users["reviewer"]).delete(f"/api/models/{model.id}/").status_code == 403


@pytest.mark.django_db
def test_one_default_per_method_and_only_a_ready_model():
    w = make_world()
    client = _client(w.users["manager"])
    first, second = (
        TrainedModel.objects.create(
            project=w.project, method="dynamite", name=n, state="ready", origin="trained"
        )
        for n in "ab"
    )
    importing = TrainedModel.objects.create(
        project=w.project, method="dynamite", name="c", origin="uploaded"
    )
    exits = TrainedModel.objects.create(
        project=w.project, method="exits", name="g", state="ready", origin="trained"
    )
    assert client.post(f"/api/models/{first.id}/default/").json()["is_default"] is True
    assert client.post(f"/api/models/{exits.id}/default/").status_code == 200
    assert client.post(f"/api/models/{second.id}/default/").status_code == 200
    assert client.post(f"/api/models/{importing.id}/default/").status_code == 409
    defaults = set(TrainedModel.objects.filter(is_default=True).values_list("id", flat=True))
    assert defaults == {second.id, exits.id}


@pytest.mark.django_db
def test_the_annotation_page_offers_the_default_models():
    from annotation.labeling.live import _method_ok, offered_methods

    w = make_world()
    model = TrainedModel.objects.create(
        project=w.project,
        method="dynamite",
        name="coco",
        state="ready",
        origin="trained",
        is_default=True,
    )
    offered = {m["name"]: m for m in offered_methods(w.project.id)}
    assert (
        offered["dynamite"]["backbones"] == [f"model-{model.id}"]
        and offered["dynamite"]["multi_object"]
    )
    assert "dynamite" not in {m["name"] for m in offered_methods(None)}
    assert _method_ok("dynamite", None, w.project.id) == ("dynamite", f"model-{model.id}")
    from annotation.common.exceptions import ApplicationError

    with pytest.raises(ApplicationError):
        _method_ok("dynamite", "model-999", w.project.id)


@pytest.mark.django_db
def test_delete_removes_the_row_and_its_file(django_capture_on_commit_callbacks):
    w = make_world()
    client = _client(w.users["owner"])
    body = _upload(client, w.project.id).json()
    model = TrainedModel.objects.get(pk=body["id"])
    assert client.delete(f"/api/models/{model.id}/").status_code == 409  # still importing
    TrainedModel.objects.filter(pk=model.id).update(state="failed")
    path = storage.media_path(model.file)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/models/{model.id}/").status_code == 204
    assert not TrainedModel.objects.filter(pk=model.id).exists()
    assert not path.exists()


@pytest.mark.django_db
def test_the_methods_are_listed_as_they_registered():
    w = make_world()
    listed = {m["name"]: m for m in _client(w.users["annotator"]).get("/api/methods/").json()}
    assert {"m2n2", "salt", "mis", "opencv-grabcut", "dynamite", "exits"} <= set(listed)
    assert listed["m2n2"]["needs_trained_model"] is False and listed["m2n2"]["trained"] is None
    assert listed["dynamite"]["trained"]["backbones"] == ["swin_tiny", "resnet50", "effnet-lite0"]
    assert listed["exits"]["trained"]["suffixes"] == [".safetensors"] and listed["exits"]["prompts"]
    assert APIClient().get("/api/methods/").status_code in (401, 403)
