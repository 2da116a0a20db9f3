"""A closed task gives its images back: its annotator no longer opens or edits them, over REST
or (through the same rule) the socket; the task's record stays."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.labeling.models import Task
from annotation.labeling.services import task_create
from annotation.projects.access import OPEN_TASK_STATES
from tests.factories import make_world

pytestmark = pytest.mark.django_db


def test_the_open_states_are_the_tasks_states_but_closed():
    assert set(OPEN_TASK_STATES) == set(Task.State.values) - {Task.State.CLOSED}


def _annotator(w) -> APIClient:
    client = APIClient()
    client.force_login(w.users["annotator"])
    return client


def test_closing_a_task_takes_its_images_from_its_annotator():
    w = make_world()
    client = _annotator(w)
    image_url = f"/api/images/{w.assigned_image.id}/instances/"
    assert client.get(image_url).status_code == 200
    Task.objects.filter(pk=w.task.id).update(state=Task.State.CLOSED)
    assert client.get(image_url).status_code == 404
    patch = client.patch(
        f"/api/instances/{w.instance.id}/",
        {"version": w.instance.version, "label_id": None},
        format="json",
    )
    assert patch.status_code == 404
    # the task itself stays listed, closed, with its images counted
    (row,) = client.get(f"/api/projects/{w.project.id}/tasks/").json()
    assert row["state"] == "closed" and row["images_total"] == 1


def test_an_image_in_a_closed_task_and_another_users_open_task_is_not_theirs():
    w = make_world()
    task_create(
        project=w.project,
        dataset=w.dataset,
        name="t3",
        assignee_id=w.users["annotator2"].id,
        image_ids=[w.assigned_image.id],
    )
    Task.objects.filter(pk=w.task.id).update(state=Task.State.CLOSED)
    client = _annotator(w)
    assert client.get(f"/api/images/{w.assigned_image.id}/instances/").status_code == 404
    other = APIClient()
    other.force_login(w.users["annotator2"])
    assert other.get(f"/api/images/{w.assigned_image.id}/instances/").status_code == 200
