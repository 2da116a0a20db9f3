"""The task list carries each task's progress, counted in one query whatever the task count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.labeling.services import instance_create, task_create
from tests.factories import add_images, box_mask, make_world

pytestmark = pytest.mark.django_db


def test_task_list_reports_done_over_total_per_task():
    w = make_world()
    extra = add_images(w.dataset, 3, start_seed=10)
    # t3: four images; one with a manual mask, one with only a pending pseudo label, one with
    # an accepted pseudo label, one empty. Only the accepted pseudo label makes one done
    # (test_task_done.py has the whole rule): t1's manual mask does not.
    task = task_create(
        project=w.project,
        dataset=w.dataset,
        name="t3",
        assignee_id=w.users["annotator"].id,
        image_ids=[w.other_image.id, *[i.id for i in extra]],
    )
    instance_create(
        image=extra[0], mask=box_mask(extra[0], 1, 1, 5, 5), source="mis", score=0.5, pseudo=True
    )
    accepted = instance_create(
        image=extra[1], mask=box_mask(extra[1], 1, 1, 5, 5), source="mis", score=0.9, pseudo=True
    )
    accepted.review_state = "accepted"
    accepted.save(update_fields=["review_state"])
    client = APIClient()
    client.force_login(w.users["owner"])
    rows = {r["name"]: r for r in client.get(f"/api/projects/{w.project.id}/tasks/").json()}
    assert {
        k: rows["t1"][k] for k in ("images_total", "images_done", "state", "assignee_username")
    } == {"images_total": 1, "images_done": 0, "state": "todo", "assignee_username": "annotator"}
    assert (rows["t3"]["images_total"], rows["t3"]["images_done"]) == (4, 1)
    assert rows["t3"]["id"] == task.id and len(rows["t3"]["image_ids"]) == 4


def test_task_list_queries_do_not_grow_with_tasks():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    url = f"/api/projects/{w.project.id}/tasks/"
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    images = add_images(w.dataset, 6, start_seed=20)
    for i, image in enumerate(images):
        task_create(
            project=w.project,
            dataset=w.dataset,
            name=f"x{i}",
            assignee_id=w.users["annotator2"].id,
            image_ids=[image.id],
        )
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).json()
    assert len(body) == 8
    assert len(many.captured_queries) == len(few.captured_queries)
