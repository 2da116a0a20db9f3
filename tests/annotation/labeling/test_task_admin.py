"""Task management by owners and managers: creating tasks from a selection of a dataset's
images (all, a range, the unassigned ones, split between annotators), reassigning, closing
and reopening; annotators get 403, other tenants 404, bad input 400 and nothing saved."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.labeling import assignments
from annotation.labeling.models import Task
from annotation.projects.services import project_create
from annotation.users.models import User
from tests.factories import add_images, make_world

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _bulk(w, **body):
    return {"dataset_id": w.dataset.id, "name": "batch", "select": "all", **body}


def test_owner_creates_one_task_from_all_images_assigned():
    w = make_world()
    add_images(w.dataset, 3, start_seed=10)
    client = _client(w.users["owner"])
    annotator = w.users["annotator"]
    response = client.post(
        f"/api/projects/{w.project.id}/tasks/bulk/",
        _bulk(w, assignee_ids=[annotator.id]),
        format="json",
    )
    assert response.status_code == 201, response.json()
    (row,) = response.json()
    ids = list(w.dataset.images.order_by("id").values_list("id", flat=True))
    assert row["name"] == "batch" and row["assignee_username"] == "annotator"
    assert row["image_ids"] == ids and row["images_total"] == 5 and row["state"] == "todo"


def test_a_range_takes_positions_in_the_dataset_order_and_stops_at_its_end():
    w = make_world()
    add_images(w.dataset, 4, start_seed=10)
    ids = list(w.dataset.images.order_by("id").values_list("id", flat=True))
    client = _client(w.users["manager"])
    url = f"/api/projects/{w.project.id}/tasks/bulk/"
    response = client.post(url, _bulk(w, select="range", first=2, last=4), format="json")
    assert response.status_code == 201
    assert response.json()[0]["image_ids"] == ids[1:4]
    response = client.post(url, _bulk(w, select="range", first=5, last=99), format="json")
    assert response.json()[0]["image_ids"] == ids[4:]


def test_unassigned_takes_only_images_in_no_open_task():
    w = make_world()  # t1 holds assigned_image, t2 holds other_image
    new = add_images(w.dataset, 3, start_seed=10)
    client = _client(w.users["owner"])
    url = f"/api/projects/{w.project.id}/tasks/bulk/"
    response = client.post(url, _bulk(w, select="unassigned"), format="json")
    assert response.json()[0]["image_ids"] == [i.id for i in new]
    # Nothing is left; closing t1 gives its image back.
    response = client.post(url, _bulk(w, select="unassigned"), format="json")
    assert response.status_code == 400 and "no images match" in response.json()["error"]["message"]
    assert (
        client.patch(f"/api/tasks/{w.task.id}/", {"state": "closed"}, format="json").status_code
        == 200
    )
    response = client.post(url, _bulk(w, select="unassigned"), format="json")
    assert response.json()[0]["image_ids"] == [w.assigned_image.id]


def test_split_between_annotators_is_disjoint_balanced_and_named():
    w = make_world()
    add_images(w.dataset, 5, start_seed=10)  # 7 images in all
    client = _client(w.users["owner"])
    people = [w.users["annotator"], w.users["annotator2"], w.users["reviewer"]]
    response = client.post(
        f"/api/projects/{w.project.id}/tasks/bulk/",
        _bulk(w, name="Birds", assignee_ids=[u.id for u in people]),
        format="json",
    )
    assert response.status_code == 201, response.json()
    rows = response.json()
    assert [r["name"] for r in rows] == ["Birds 1/3", "Birds 2/3", "Birds 3/3"]
    assert [r["assignee"] for r in rows] == [u.id for u in people]
    sizes = [len(r["image_ids"]) for r in rows]
    assert sorted(sizes) == [2, 2, 3]
    every = [i for r in rows for i in r["image_ids"]]
    assert sorted(every) == sorted(w.dataset.images.values_list("id", flat=True))
    assert len(set(every)) == len(every)


def test_split_into_unassigned_parts_and_its_bounds():
    assert [len(c) for c in assignments.split_evenly(list(range(10)), 4)] == [3, 3, 2, 2]
    w = make_world()
    client = _client(w.users["owner"])
    url = f"/api/projects/{w.project.id}/tasks/bulk/"
    response = client.post(url, _bulk(w, parts=2), format="json")
    assert [r["assignee"] for r in response.json()] == [None, None]
    before = Task.objects.count()
    for body, words in (
        (_bulk(w, parts=3), "cannot be split into 3"),  # 2 images, 3 tasks
        (_bulk(w, parts=51), "parts"),
        (_bulk(w, assignee_ids=list(range(1, 52))), "assignee_ids"),
        (_bulk(w, parts=2, assignee_ids=[w.users["annotator"].id]), "one annotator per part"),
        (_bulk(w, assignee_ids=[w.users["outsider"].id]), "not members"),
        (_bulk(w, assignee_ids=[w.users["annotator"].id] * 2), "chosen once"),
        (_bulk(w, select="range"), "needs first and last"),
        (_bulk(w, select="range", first=3, last=2), "empty"),
        (_bulk(w, select="range", first=9, last=12), "cannot start at 9"),
        (_bulk(w, select="everything"), "select"),
        (_bulk(w, name="  "), "name"),
        (_bulk(w, dataset_id=10**12), "dataset_id"),
        ({"name": "x"}, "dataset_id"),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert words in str(response.json()), (words, response.json())
    assert Task.objects.count() == before


def test_a_task_holds_at_most_ten_thousand_images(monkeypatch):
    monkeypatch.setattr(assignments, "MAX_TASK_IMAGES", 1)
    w = make_world()
    client = _client(w.users["owner"])
    response = client.post(f"/api/projects/{w.project.id}/tasks/bulk/", _bulk(w), format="json")
    assert response.status_code == 400 and "at most 1 images" in response.json()["error"]["message"]
    response = client.post(
        f"/api/projects/{w.project.id}/tasks/bulk/", _bulk(w, parts=2), format="json"
    )
    assert response.status_code == 201


def test_only_owners_and_managers_create_tasks_other_tenants_get_404():
    w = make_world()
    url = f"/api/projects/{w.project.id}/tasks/bulk/"
    for name, status in (
        ("annotator", 403),
        ("reviewer", 403),
        ("outsider", 404),
        ("manager", 201),
    ):
        response = _client(w.users[name]).post(url, _bulk(w), format="json")
        assert response.status_code == status, (name, response.json())
    # An admin of another project cannot reach this project's dataset through their own.
    stranger = User.objects.create_user(username="stranger", password="pw-12345678")
    theirs = project_create(name="Theirs", owner=stranger)
    response = _client(stranger).post(
        f"/api/projects/{theirs.id}/tasks/bulk/", _bulk(w), format="json"
    )
    assert response.status_code == 400 and "not a dataset of this project" in str(response.json())
    assert _client(stranger).patch(f"/api/tasks/{w.task.id}/", {"state": "closed"}).status_code == (
        404
    )


def test_reassign_close_and_reopen():
    w = make_world()
    owner, annotator = _client(w.users["owner"]), _client(w.users["annotator"])
    url = f"/api/tasks/{w.task.id}/"
    response = owner.patch(url, {"assignee_id": w.users["annotator2"].id}, format="json")
    assert response.status_code == 200 and response.json()["assignee_username"] == "annotator2"
    # with its progress, so that the page can redraw the row from the answer
    assert response.json()["images_total"] == 1
    assert isinstance(response.json()["images_done"], int)
    response = owner.patch(url, {"assignee_id": w.users["outsider"].id}, format="json")
    assert response.status_code == 400
    assert (
        owner.patch(url, {"assignee_id": w.users["annotator"].id}, format="json").status_code == 200
    )
    # The annotator may move their task along, but not close it or hand it on.
    assert annotator.patch(url, {"state": "closed"}, format="json").status_code == 403
    assert annotator.patch(url, {"assignee_id": w.users["annotator2"].id}).status_code == 403
    assert owner.patch(url, {"state": "closed"}, format="json").json()["state"] == "closed"
    # Closed: the annotator sees it listed as closed and can no longer move it.
    rows = annotator.get(f"/api/projects/{w.project.id}/tasks/").json()
    assert [(r["id"], r["state"]) for r in rows] == [(w.task.id, "closed")]
    response = annotator.patch(url, {"state": "in_progress"}, format="json")
    assert response.status_code == 403 and "closed" in response.json()["error"]["message"]
    assert owner.patch(url, {"state": "todo"}, format="json").json()["state"] == "todo"
    assert annotator.patch(url, {"state": "in_progress"}, format="json").status_code == 200


def test_task_image_lists_are_bounded(monkeypatch):
    w = make_world()
    client = _client(w.users["owner"])
    body = {
        "dataset_id": w.dataset.id,
        "name": "big",
        "image_ids": list(range(1, assignments.MAX_TASK_IMAGES + 2)),
    }
    response = client.post(f"/api/projects/{w.project.id}/tasks/", body, format="json")
    assert response.status_code == 400 and "image_ids" in response.json()["error"]["detail"]
