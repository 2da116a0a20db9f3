"""The Jobs page's kinds come from the methods' batch jobs: listed with their forms without
torch, a network choice narrowed to what this deployment has weights for, checked at launch."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.jobs.models import Job
from tests.factories import make_world

pytestmark = pytest.mark.django_db


def _kinds(client) -> dict[str, dict]:
    response = client.get("/api/jobs/kinds/")
    assert response.status_code == 200, response.content
    return {k["kind"]: k for k in response.json()}


def test_the_kinds_and_their_forms_come_from_the_methods(settings):
    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "BATCH_BACKBONES": ["tiny-effnet"]}
    kinds = _kinds(client)
    # the pipeline's order: proposals, labels found from their names, pseudo masks, training,
    # then the platform's export
    assert list(kinds) == ["mis", "sam3_text", "exits", "train", "export"]
    proposals = kinds["mis"]
    assert (proposals["capability"], proposals["method"], proposals["unit"]) == (
        "proposals",
        "mis",
        "image",
    )
    params = {p["name"]: p for p in proposals["params"]}
    # the method's settings, then the platform's own
    assert list(params)[:2] == ["backbone", "max_per_image"] and "label_id" in params
    assert params["backbone"]["choices"] == [["tiny-effnet", "tiny-effnet"]]
    assert params["backbone"]["default"] == "tiny-effnet"
    assert params["label_id"]["kind"] == "label"
    assert params["max_per_image"] == {
        **params["max_per_image"],
        "kind": "int",
        "default": 20,
        "min": 1,
        "max": 1000,
    }
    train = {p["name"]: p for p in kinds["train"]["params"]}
    assert train["init_model_id"]["kind"] == "model"
    assert train["init_model_id"]["method"] == "dynamite"
    assert kinds["exits"]["stages"]["generator"] == "training the generator"
    assert "verify" not in kinds and "model_import" not in kinds
    assert APIClient().get("/api/jobs/kinds/").status_code in (401, 403)


def test_a_network_this_deployment_lacks_is_refused_at_launch(settings):
    w = make_world()
    settings.MASKWRIGHT = {
        **settings.MASKWRIGHT,
        "BATCH_BACKBONES": ["effnet-lite0", "tiny-effnet"],
    }
    client = APIClient()
    client.force_login(w.users["manager"])
    url = f"/api/projects/{w.project.id}/jobs/"
    for name in ("nope", "sd2", "", 3):
        response = client.post(
            url,
            {"dataset_id": w.dataset.id, "kind": "mis", "params": {"backbone": name}},
            format="json",
        )
        assert response.status_code == 400, response.json()
        message = response.json()["error"]["message"]
        assert "backbone must be one of effnet-lite0, tiny-effnet" in message, message
    assert not Job.objects.filter(dataset=w.dataset).exists()
