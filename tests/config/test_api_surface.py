"""The API's outer surface: schema, docs, error shape for malformed input."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import make_world

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_every_endpoint(admin_client):
    response = admin_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/datasets/{dataset_id}/upload/",
        "/api/instances/{instance_id}/",
        "/api/projects/{project_id}/jobs/",
        "/api/instances/{instance_id}/prompts/",
    ):
        assert path in paths
    assert admin_client.get("/api/docs/").status_code == 200


def test_malformed_json_and_wrong_ids_get_clear_errors():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    response = client.generic(
        "POST",
        f"/api/projects/{w.project.id}/labels/",
        "{not json",
        content_type="application/json",
    )
    assert response.status_code == 400 and "JSON parse error" in response.json()["error"]["message"]
    response = client.post(
        f"/api/projects/{w.project.id}/labels/", {"name": "x", "color": "red"}, format="json"
    )
    assert response.status_code == 400 and "colour must look like" in str(response.json())
    assert client.get("/api/images/99999999/").status_code == 404
    assert client.get("/api/images/abc/").status_code == 404
    response = client.patch(f"/api/instances/{w.instance.id}/", {"mask": "x"}, format="json")
    assert response.status_code == 400 and "version" in str(response.json())


def test_pages_need_a_login(client):
    assert client.get("/").status_code == 302
    assert client.get("/login/").status_code == 200
    assert client.get("/healthz").json() == {"ok": True}


def test_unknown_api_paths_answer_in_the_json_error_shape(client, admin_client):
    for path in ("/api/nothing-here/", "/api/images/abc/", "/api/projects/1/nope"):
        response = client.get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
        body = response.json()
        assert body["error"]["code"] == "not_found" and body["error"]["detail"] == {}, body
        assert path in body["error"]["message"]
    # paths outside the API keep Django's page (most other paths load the browser app)
    response = admin_client.get("/ws/no-such-page")
    assert response.status_code == 404 and not response["Content-Type"].startswith(
        "application/json"
    )
