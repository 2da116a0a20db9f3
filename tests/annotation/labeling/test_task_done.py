"""An image is done for a task when its annotator marked it done or a reviewer accepted a
pseudo label on it; imported masks, manual masks and pending proposals never count."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.labeling.models import ReviewState, Source, Task, TaskImageDone
from annotation.labeling.review import instance_review
from annotation.labeling.selectors import task_list
from annotation.labeling.services import instance_create, task_create
from annotation.projects.models import Role
from tests.factories import add_images, box_mask, make_world

pytestmark = pytest.mark.django_db


def _task_with(w, images):
    return task_create(
        project=w.project,
        dataset=w.dataset,
        name="day",
        assignee_id=w.users["annotator"].id,
        image_ids=[i.id for i in images],
    )


def _counts(w, task):
    row = task_list(w.users["owner"], w.project.id, Role.OWNER).get(pk=task.id)
    return row.images_done, row.images_total


def _client(user):
    client = APIClient()
    client.force_login(user)
    return client


def test_imports_and_pending_proposals_do_not_make_an_image_done():
    w = make_world()
    images = add_images(w.dataset, 3, start_seed=30)
    for image in images:
        instance_create(image=image, mask=box_mask(image, 1, 1, 9, 9), source=Source.IMPORT)
        for k in range(3):
            instance_create(
                image=image,
                mask=box_mask(image, k, k, k + 5, k + 5),
                source="mis",
                score=0.5,
                pseudo=True,
            )
    task = _task_with(w, images)
    assert _counts(w, task) == (0, 3)


def test_a_mark_or_a_reviewer_acceptance_makes_an_image_done():
    w = make_world()
    images = add_images(w.dataset, 3, start_seed=40)
    task = _task_with(w, images)
    TaskImageDone.objects.create(task=task, image=images[0], by=w.users["annotator"])
    proposal = instance_create(
        image=images[1], mask=box_mask(images[1], 1, 1, 5, 5), source="mis", pseudo=True
    )
    assert _counts(w, task) == (1, 3)
    instance_review(instance_id=proposal.id, action="accept", expected_version=proposal.version)
    assert _counts(w, task) == (2, 3)
    # a rejected proposal and a plain manual mask still leave the third image not done
    rejected = instance_create(
        image=images[2], mask=box_mask(images[2], 1, 1, 5, 5), source="mis", pseudo=True
    )
    rejected.review_state = ReviewState.REJECTED
    rejected.save(update_fields=["review_state"])
    instance_create(image=images[2], mask=box_mask(images[2], 2, 2, 6, 6))
    assert _counts(w, task) == (2, 3)


def test_a_mark_counts_only_for_its_own_task():
    w = make_world()
    images = add_images(w.dataset, 2, start_seed=50)
    first, second = _task_with(w, images), _task_with(w, images)
    TaskImageDone.objects.create(task=first, image=images[0])
    assert _counts(w, first) == (1, 2)
    assert _counts(w, second) == (0, 2)


def test_annotator_marks_and_unmarks_an_image_and_reads_the_progress():
    w = make_world()
    images = add_images(w.dataset, 2, start_seed=60)
    task = _task_with(w, images)
    client = _client(w.users["annotator"])
    url = f"/api/tasks/{task.id}/images/{images[1].id}/done/"
    body = client.put(url).json()
    assert (body["images_done"], body["images_total"]) == (1, 2)
    assert [i["done"] for i in body["images"]] == [False, True]
    assert body["images"][0]["name"] == images[0].original_name
    assert client.put(url).status_code == 200  # twice is still one mark
    assert TaskImageDone.objects.filter(task=task).count() == 1
    assert TaskImageDone.objects.get(task=task).by == w.users["annotator"]
    body = client.delete(url).json()
    assert body["images_done"] == 0
    assert client.get(f"/api/tasks/{task.id}/progress/").json()["images_done"] == 0


def test_done_marks_are_refused_clearly():
    w = make_world()
    images = add_images(w.dataset, 1, start_seed=70)
    task = _task_with(w, images)
    url = f"/api/tasks/{task.id}/images/{images[0].id}/done/"
    # another annotator does not see the task; a reviewer sees it but cannot mark
    assert _client(w.users["annotator2"]).put(url).status_code == 404
    refused = _client(w.users["reviewer"]).put(url)
    assert refused.status_code == 403 and "mark images done" in refused.json()["error"]["message"]
    # an image outside the task
    outside = f"/api/tasks/{task.id}/images/{w.other_image.id}/done/"
    assert _client(w.users["annotator"]).put(outside).status_code == 404
    # a closed task keeps its record
    Task.objects.filter(pk=task.id).update(state=Task.State.CLOSED)
    closed = _client(w.users["annotator"]).put(url)
    assert closed.status_code == 400 and "closed" in closed.json()["error"]["message"]
    assert not TaskImageDone.objects.filter(task=task).exists()


def test_an_annotator_adopts_a_pending_proposal_once():
    w = make_world()
    proposal = instance_create(
        image=w.assigned_image,
        mask=box_mask(w.assigned_image, 1, 1, 5, 5),
        source="mis",
        pseudo=True,
    )
    client = _client(w.users["annotator"])
    url = f"/api/instances/{proposal.id}/adopt/"
    assert client.post(url, {"version": proposal.version + 1}, format="json").status_code == 409
    body = client.post(url, {"version": proposal.version}, format="json").json()
    assert (body["review_state"], body["author"], body["version"]) == (
        "accepted",
        w.users["annotator"].id,
        proposal.version + 1,
    )
    proposal.refresh_from_db()
    assert not proposal.pseudo
    # taken once: it is no proposal any more; a reviewer (who edits nothing) is refused
    again = client.post(url, {"version": proposal.version}, format="json")
    assert again.status_code == 400 and "not a pending proposal" in again.json()["error"]["message"]
    other = instance_create(
        image=w.assigned_image,
        mask=box_mask(w.assigned_image, 2, 2, 6, 6),
        source="mis",
        pseudo=True,
    )
    refused = _client(w.users["reviewer"]).post(
        f"/api/instances/{other.id}/adopt/", {"version": other.version}, format="json"
    )
    assert refused.status_code == 403
    # an annotator of another task does not see the image at all
    hidden = _client(w.users["annotator2"]).post(
        f"/api/instances/{other.id}/adopt/", {"version": other.version}, format="json"
    )
    assert hidden.status_code == 404
