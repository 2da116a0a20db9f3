"""``GET /api/checkpoints/``: the checkpoints each alive interactive worker has on its disk, for
staff and the owners and managers of any project; everyone else gets 403."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.projects.services import project_create
from annotation.segmentation.interactive import checkpoints, dispatch, keys
from tests.factories import make_world

HOST = "ckpt-api-test@nowhere"
URL = "/api/checkpoints/"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A worker ``HOST`` (alive as far as the web side can tell) whose disk holds the tiny SAM
    checkpoint as ``facebook--sam-vit-base``, its report in Redis as the heartbeat leaves it."""
    from inference.methods.sam.tiny import save_tiny

    save_tiny("sam", tmp_path / "weights" / "facebook--sam-vit-base")
    (tmp_path / "hf").mkdir()
    report = checkpoints.discover("cuda:0", root=tmp_path / "weights", hf_cache_dir=tmp_path / "hf")
    checkpoints.publish(HOST, report)
    monkeypatch.setattr(dispatch, "alive_workers", lambda: [HOST])
    yield tmp_path / "weights"
    keys.redis_client().delete(keys.weights(HOST))


@pytest.mark.django_db
def test_owners_managers_and_staff_see_each_workers_checkpoints(published, django_user_model):
    w = make_world()
    for name in ("owner", "manager"):
        response = _client(w.users[name]).get(URL)
        assert response.status_code == 200, response.content
        (found,) = response.json()["workers"]
        assert (found["hostname"], found["device"], found["reported"]) == (HOST, "cuda:0", True)
        (sam,) = found["found"]
        assert sam["method"] == "sam" and sam["variant"] == "vit-b"
        assert sam["model_id"] == "facebook/sam-vit-base" and sam["bytes"] > 10_000
        assert sam["path"] == str(published / "facebook--sam-vit-base")
        missing = {(m["method"], m["variant"]): m["folder"] for m in found["missing"]}
        assert len(missing) == 7
        assert missing[("sam3", "sam3")] == f"{published}/facebook--sam3"
    staff = django_user_model.objects.create_user(username="staff", password="pw", is_staff=True)
    assert _client(staff).get(URL).status_code == 200


@pytest.mark.django_db
def test_annotators_reviewers_and_people_without_a_project_get_403(published):
    w = make_world()
    for name in ("annotator", "reviewer", "outsider"):
        response = _client(w.users[name]).get(URL)
        assert response.status_code == 403, name
        assert "owners and managers" in response.json()["error"]["message"]
    assert APIClient().get(URL).status_code in (401, 403)
    # the workers serve every project: the owner of any project may see them
    project_create(name="Elsewhere", owner=w.users["outsider"])
    assert _client(w.users["outsider"]).get(URL).status_code == 200


@pytest.mark.django_db
def test_no_alive_worker_lists_none(monkeypatch):
    w = make_world()
    monkeypatch.setattr(dispatch, "alive_workers", list)
    assert _client(w.users["owner"]).get(URL).json() == {"workers": []}
