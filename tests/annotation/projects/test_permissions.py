"""The role × endpoint matrix, walked in full.

Each row is one endpoint; each column the expected status for owner, manager, reviewer,
annotator (on their own task's image) and a user outside the project. A second table covers
an annotator reaching for an image that is not in their tasks.
"""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from tests.factories import World, box_mask, make_image_bytes, make_world

pytestmark = pytest.mark.django_db

ROLES = ("owner", "manager", "reviewer", "annotator", "outsider")


def _mask(w: World) -> dict:
    return {"mask": box_mask(w.assigned_image, 0, 0, 4, 4), "label_id": w.label.id}


# name, method, url(w), body(w) or None, expected statuses in ROLES order
MATRIX = [
    (
        "project get",
        "get",
        lambda w: f"/api/projects/{w.project.id}/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "project patch",
        "patch",
        lambda w: f"/api/projects/{w.project.id}/",
        lambda w: {"name": "x"},
        (200, 200, 403, 403, 404),
    ),
    (
        "project delete",
        "delete",
        lambda w: f"/api/projects/{w.project.id}/",
        None,
        (204, 403, 403, 403, 404),
    ),
    (
        "members list",
        "get",
        lambda w: f"/api/projects/{w.project.id}/members/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "members add",
        "post",
        lambda w: f"/api/projects/{w.project.id}/members/",
        lambda w: {"username": "outsider", "role": "annotator"},
        (201, 201, 403, 403, 404),
    ),
    (
        "members remove",
        "delete",
        lambda w: (
            f"/api/projects/{w.project.id}/members/{w.project.memberships.get(user__username='annotator2').id}/"
        ),
        None,
        (204, 204, 403, 403, 404),
    ),
    (
        "labels list",
        "get",
        lambda w: f"/api/projects/{w.project.id}/labels/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "labels create",
        "post",
        lambda w: f"/api/projects/{w.project.id}/labels/",
        lambda w: {"name": "cat", "color": "#00ff00"},
        (201, 201, 403, 403, 404),
    ),
    (
        "label patch",
        "patch",
        lambda w: f"/api/projects/{w.project.id}/labels/{w.label.id}/",
        lambda w: {"color": "#0000ff"},
        (200, 200, 403, 403, 404),
    ),
    (
        "labels order",
        "put",
        lambda w: f"/api/projects/{w.project.id}/labels/order/",
        lambda w: {"label_ids": [w.label.id]},
        (200, 200, 403, 403, 404),
    ),
    (
        "datasets list",
        "get",
        lambda w: f"/api/projects/{w.project.id}/datasets/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "dataset create",
        "post",
        lambda w: f"/api/projects/{w.project.id}/datasets/",
        lambda w: {"name": "B"},
        (201, 201, 403, 403, 404),
    ),
    (
        "dataset get",
        "get",
        lambda w: f"/api/datasets/{w.dataset.id}/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "dataset delete",
        "delete",
        lambda w: f"/api/datasets/{w.dataset.id}/",
        None,
        (204, 204, 403, 403, 404),
    ),
    (
        "upload",
        "multipart",
        lambda w: f"/api/datasets/{w.dataset.id}/upload/",
        lambda w: {"files": [("new.png", make_image_bytes(seed=99))]},
        (200, 200, 403, 403, 404),
    ),
    (
        "images list",
        "get",
        lambda w: f"/api/datasets/{w.dataset.id}/images/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "image get",
        "get",
        lambda w: f"/api/images/{w.assigned_image.id}/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "image file",
        "get",
        lambda w: f"/api/images/{w.assigned_image.id}/file",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "image thumbnail",
        "get",
        lambda w: f"/api/images/{w.assigned_image.id}/thumbnail",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "instances list",
        "get",
        lambda w: f"/api/images/{w.assigned_image.id}/instances/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "instance create",
        "post",
        lambda w: f"/api/images/{w.assigned_image.id}/instances/",
        _mask,
        (201, 201, 403, 201, 404),
    ),
    (
        "instance get",
        "get",
        lambda w: f"/api/instances/{w.instance.id}/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "instance edit mask",
        "patch",
        lambda w: f"/api/instances/{w.instance.id}/",
        lambda w: {"version": 1, **_mask(w)},
        (200, 200, 403, 200, 404),
    ),
    (
        "instance review",
        "patch",
        lambda w: f"/api/instances/{w.instance.id}/",
        lambda w: {"version": 1, "review_state": "rejected"},
        (200, 200, 200, 403, 404),
    ),
    (
        "instance delete",
        "delete",
        lambda w: f"/api/instances/{w.instance.id}/",
        None,
        (204, 204, 403, 204, 404),
    ),
    (
        "prompts list",
        "get",
        lambda w: f"/api/instances/{w.instance.id}/prompts/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "prompt add",
        "post",
        lambda w: f"/api/instances/{w.instance.id}/prompts/",
        lambda w: {"kind": "click", "payload": {"x": 3, "y": 4, "positive": True}},
        (201, 201, 403, 201, 404),
    ),
    (
        "tasks list",
        "get",
        lambda w: f"/api/projects/{w.project.id}/tasks/",
        None,
        (200, 200, 200, 200, 404),
    ),
    (
        "task create",
        "post",
        lambda w: f"/api/projects/{w.project.id}/tasks/",
        lambda w: {
            "dataset_id": w.dataset.id,
            "name": "t3",
            "assignee_id": w.users["annotator"].id,
            "image_ids": [w.other_image.id],
        },
        (201, 201, 403, 403, 404),
    ),
    ("task get", "get", lambda w: f"/api/tasks/{w.task.id}/", None, (200, 200, 200, 200, 404)),
    (
        "task submit",
        "patch",
        lambda w: f"/api/tasks/{w.task.id}/",
        lambda w: {"state": "submitted"},
        (200, 200, 403, 200, 404),
    ),
    (
        "task mark reviewed",
        "patch",
        lambda w: f"/api/tasks/{w.task.id}/",
        lambda w: {"state": "reviewed"},
        (200, 200, 200, 403, 404),
    ),
    (
        "task reassign",
        "patch",
        lambda w: f"/api/tasks/{w.task.id}/",
        lambda w: {"assignee_id": w.users["annotator2"].id},
        (200, 200, 403, 403, 404),
    ),
    (
        "task delete",
        "delete",
        lambda w: f"/api/tasks/{w.task.id}/",
        None,
        (204, 204, 403, 403, 404),
    ),
    (
        "jobs list",
        "get",
        lambda w: f"/api/projects/{w.project.id}/jobs/",
        None,
        (200, 200, 200, 403, 404),
    ),
    (
        "job launch",
        "post",
        lambda w: f"/api/projects/{w.project.id}/jobs/",
        lambda w: {"dataset_id": w.dataset.id, "kind": "verify"},
        (201, 201, 403, 403, 404),
    ),
]

# An annotator reaching for what is not in their tasks: 404, as if it did not exist.
FOREIGN = [
    ("image get", "get", lambda w: f"/api/images/{w.other_image.id}/"),
    ("image file", "get", lambda w: f"/api/images/{w.other_image.id}/file"),
    ("image thumbnail", "get", lambda w: f"/api/images/{w.other_image.id}/thumbnail"),
    ("instances list", "get", lambda w: f"/api/images/{w.other_image.id}/instances/"),
    ("instance get", "get", lambda w: f"/api/instances/{w.other_instance.id}/"),
    ("instance delete", "delete", lambda w: f"/api/instances/{w.other_instance.id}/"),
    ("prompts list", "get", lambda w: f"/api/instances/{w.other_instance.id}/prompts/"),
    ("task get", "get", lambda w: f"/api/tasks/{w.other_image.tasks.first().id}/"),
]


def _call(client: APIClient, method: str, url: str, body):
    if method == "multipart":
        files = {name: [io.BytesIO(data) for _, data in items] for name, items in body.items()}
        for name, items in body.items():
            for fh, (fname, _) in zip(files[name], items):
                fh.name = fname
        return client.post(url, files, format="multipart")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=[r[0] for r in MATRIX])
def test_matrix(row, role):
    name, method, url, body, expected = row
    w = make_world()
    client = APIClient()
    client.force_login(w.users[role])
    response = _call(client, method, url(w), body(w) if body else None)
    want = expected[ROLES.index(role)]
    assert response.status_code == want, (
        name,
        role,
        response.status_code,
        getattr(response, "data", None),
    )
    if want in (403, 404):
        assert "error" in response.json() and response.json()["error"]["message"]


@pytest.mark.parametrize("row", FOREIGN, ids=[r[0] for r in FOREIGN])
def test_annotator_cannot_reach_other_tasks(row):
    name, method, url = row
    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    assert _call(client, method, url(w), None).status_code == 404, name


def test_annotator_image_list_holds_only_assigned_images():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    ids = [r["id"] for r in client.get(f"/api/datasets/{w.dataset.id}/images/").json()["results"]]
    assert ids == [w.assigned_image.id]
    client.force_login(w.users["reviewer"])
    ids = [r["id"] for r in client.get(f"/api/datasets/{w.dataset.id}/images/").json()["results"]]
    assert ids == [w.assigned_image.id, w.other_image.id]


def test_annotator_task_list_holds_only_their_tasks():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    assert [t["id"] for t in client.get(f"/api/projects/{w.project.id}/tasks/").json()] == [
        w.task.id
    ]


def test_project_list_shows_only_memberships():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["outsider"])
    assert client.get("/api/projects/").json() == []
    client.force_login(w.users["reviewer"])
    assert [(p["id"], p["role"]) for p in client.get("/api/projects/").json()] == [
        (w.project.id, "reviewer")
    ]


def test_anonymous_is_refused_everywhere():
    w = make_world()
    client = APIClient()
    for url in (
        f"/api/projects/{w.project.id}/",
        f"/api/images/{w.assigned_image.id}/file",
        "/api/projects/",
    ):
        assert client.get(url).status_code in (401, 403)


def test_token_auth():
    w = make_world()
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": "reviewer", "password": "pw-12345678"}, format="json"
    )
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get(f"/api/projects/{w.project.id}/").status_code == 200
    assert (
        client.post(
            "/api/auth/token/", {"username": "reviewer", "password": "nope"}, format="json"
        ).status_code
        == 401
    )


def test_last_owner_cannot_be_demoted_or_removed():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    response = client.post(
        f"/api/projects/{w.project.id}/members/",
        {"username": "owner", "role": "annotator"},
        format="json",
    )
    assert response.status_code == 400 and "owner" in response.json()["error"]["message"]


def test_image_counts_follow_what_the_caller_can_open():
    w = make_world()
    client = APIClient()
    for user, count in (("annotator", 1), ("owner", 2)):
        client.force_login(w.users[user])
        assert (
            client.get(f"/api/projects/{w.project.id}/datasets/").json()[0]["image_count"] == count
        )
        assert client.get(f"/api/datasets/{w.dataset.id}/").json()["image_count"] == count


def test_refusals_name_the_role_with_its_article():
    from annotation.labeling import permissions
    from annotation.projects.models import Role

    w = make_world()
    for who, phrase in (("annotator", "an annotator cannot"), ("reviewer", "a reviewer cannot")):
        client = APIClient()
        client.force_authenticate(w.users[who])
        response = client.post(
            f"/api/projects/{w.project.id}/datasets/", {"name": "B"}, format="json"
        )
        assert response.status_code == 403 and response.json()["error"]["message"].startswith(
            phrase
        ), response.json()
    with pytest.raises(Exception, match="^an annotator cannot review masks$"):
        permissions.require(Role.ANNOTATOR, permissions.REVIEW_MASKS)
    with pytest.raises(Exception, match="^an annotator cannot set a task to reviewed$"):
        permissions.require_task_change(Role.ANNOTATOR, {"state": "reviewed"})
