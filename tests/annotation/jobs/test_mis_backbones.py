"""The MIS backbone is a choice among those this server runs: listed for the Jobs page without
torch, checked at launch."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.jobs.models import Job
from tests.factories import make_world

pytestmark = pytest.mark.django_db


def test_the_backbones_are_listed_from_settings(settings):
    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MIS_BACKBONES": ["effnet-lite0", "tiny-effnet"]}
    assert client.get("/api/jobs/mis/backbones/").json() == {
        "backbones": ["effnet-lite0", "tiny-effnet"],
        "default": "effnet-lite0",
    }
    assert APIClient().get("/api/jobs/mis/backbones/").status_code in (401, 403)


def test_an_unknown_backbone_is_refused_at_launch(settings):
    w = make_world()
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MIS_BACKBONES": ["effnet-lite0", "tiny-effnet"]}
    client = APIClient()
    client.force_login(w.users["manager"])
    url = f"/api/projects/{w.project.id}/jobs/"
    for name in ("nope", "sd2", ""):
        response = client.post(
            url,
            {"dataset_id": w.dataset.id, "kind": "mis", "params": {"backbone": name}},
            format="json",
        )
        assert response.status_code == 400, response.json()
        message = response.json()["error"]["message"]
        assert (
            "unknown backbone" in message and "effnet-lite0, tiny-effnet" in message
        ) or "backbone must be named" in message
    assert not Job.objects.filter(dataset=w.dataset).exists()
