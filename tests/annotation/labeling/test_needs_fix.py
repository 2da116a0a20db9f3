"""Needs fix sends a pseudo label to a person: who gets it (named or the image's one task
annotator), their "To fix" list, the canvas showing it to them only, and the corrected mask
going back to the review queue as pending."""

from __future__ import annotations

import time

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from annotation.datasets.models import Image
from annotation.labeling import saves
from annotation.labeling.models import Instance, Task
from annotation.labeling.services import instance_create, task_create
from tests.factories import add_images, box_mask, make_world
from tests.sockets import session_cookie, site_headers


def _client(w, role: str) -> APIClient:
    client = APIClient()
    client.force_login(w.users[role])
    return client


def _pseudo(image: Image, score: float = 0.5, x: int = 1) -> Instance:
    return instance_create(
        image=image,
        mask=box_mask(image, x, x, x + 6, x + 5),
        source="mis",
        score=score,
        pseudo=True,
    )


def _review(client: APIClient, inst: Instance, action: str = "needs_fix", **extra):
    inst.refresh_from_db()
    return client.post(
        f"/api/instances/{inst.id}/review/",
        {"action": action, "version": inst.version, **extra},
        format="json",
    )


@pytest.mark.django_db
def test_needs_fix_goes_to_the_images_one_task_annotator_by_default(
    django_capture_on_commit_callbacks,
):
    w = make_world()
    inst = _pseudo(w.assigned_image)
    with django_capture_on_commit_callbacks() as pushes:
        response = _review(_client(w, "reviewer"), inst)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["review_state"] == "needs_fix" and body["assignee"] == w.users["annotator"].id
    inst.refresh_from_db()
    assert inst.assignee_id == w.users["annotator"].id and inst.version == 2
    assert len(pushes) == 2  # instance.updated for editors, instances.reviewed for the review page
    # the queue row names who fixes it
    row = (
        _client(w, "reviewer")
        .get(f"/api/projects/{w.project.id}/review/?state=needs_fix")
        .json()["results"][0]
    )
    assert row["assignee"] == w.users["annotator"].id and row["assignee_username"] == "annotator"
    # any other action clears the assignee
    assert _review(_client(w, "reviewer"), inst, "reset").json()["assignee"] is None
    inst.refresh_from_db()
    assert inst.review_state == "pending" and inst.assignee_id is None


@pytest.mark.django_db
def test_needs_fix_without_a_single_annotator_needs_an_assignee():
    w = make_world()
    (loose,) = add_images(w.dataset, 1, start_seed=50)  # in no task
    shared = w.other_image  # in annotator2's task; now in one of annotator's too
    task_create(
        project=w.project,
        dataset=w.dataset,
        name="t3",
        assignee_id=w.users["annotator"].id,
        image_ids=[shared.id],
    )
    reviewer = _client(w, "reviewer")
    for image in (loose, shared):
        inst = _pseudo(image)
        refused = _review(reviewer, inst)
        assert refused.status_code == 400, refused.content
        assert (
            "no single annotator" in refused.json()["error"]["message"]
            and "name an assignee" in refused.json()["error"]["message"]
        )
        inst.refresh_from_db()
        assert inst.review_state == "pending" and inst.assignee_id is None and inst.version == 1
    # naming one settles it (annotator2 holds ``shared`` in a task)
    inst = Instance.objects.filter(image=shared, source="mis").get()
    ok = _review(reviewer, inst, assignee=w.users["annotator2"].id)
    assert ok.status_code == 200 and ok.json()["assignee"] == w.users["annotator2"].id


@pytest.mark.django_db
def test_the_assignee_must_annotate_and_hold_the_image_in_a_task():
    w = make_world()
    inst = _pseudo(w.assigned_image)
    reviewer = _client(w, "reviewer")
    for user, reason in (
        ("reviewer", "does not annotate"),
        ("outsider", "does not annotate"),
        ("annotator2", "has no task with images"),
    ):
        response = _review(reviewer, inst, assignee=w.users[user].id)
        assert response.status_code == 400 and reason in response.json()["error"]["message"], (
            user,
            response.json(),
        )
    assert _review(reviewer, inst, "accept", assignee=w.users["annotator"].id).status_code == 400
    inst.refresh_from_db()
    assert inst.review_state == "pending" and inst.version == 1
    # a manager may fix it (any task holding the image opens it on the canvas)
    ok = _review(reviewer, inst, assignee=w.users["manager"].id)
    assert ok.status_code == 200 and ok.json()["assignee"] == w.users["manager"].id


@pytest.mark.django_db
def test_bulk_needs_fix_assigns_per_image_all_or_nothing(django_capture_on_commit_callbacks):
    w = make_world()
    a1, a2 = _pseudo(w.assigned_image, 0.9), _pseudo(w.assigned_image, 0.8, x=8)
    b1 = _pseudo(w.other_image, 0.7)
    url = f"/api/projects/{w.project.id}/review/bulk/"
    reviewer = _client(w, "reviewer")
    with django_capture_on_commit_callbacks() as pushes:
        body = reviewer.post(
            url, {"action": "needs_fix", "ids": [a1.id, a2.id, b1.id]}, format="json"
        ).json()
    assert body == {"changed": 3, "review_state": "needs_fix"}
    assert len(pushes) == 1
    owners = dict(
        Instance.objects.filter(pk__in=[a1.id, a2.id, b1.id]).values_list("id", "assignee_id")
    )
    assert owners == {
        a1.id: w.users["annotator"].id,
        a2.id: w.users["annotator"].id,
        b1.id: w.users["annotator2"].id,
    }

    (loose,) = add_images(w.dataset, 1, start_seed=60)
    c1 = _pseudo(loose, 0.95)
    reviewer.post(url, {"action": "reset", "ids": [a1.id, a2.id, b1.id]}, format="json")
    assert not Instance.objects.filter(assignee__isnull=False).exists()  # reset cleared them
    refused = reviewer.post(url, {"action": "needs_fix", "min_score": 0.5}, format="json")
    assert refused.status_code == 400 and str(loose.id) in refused.json()["error"]["message"]
    assert not Instance.objects.filter(review_state="needs_fix").exists()  # all or nothing
    # by threshold with a named assignee who holds every image (``loose`` joins their task)
    Task.objects.get(pk=w.task.pk).images.add(loose)
    body = reviewer.post(
        url,
        {"action": "needs_fix", "min_score": 0.75, "assignee": w.users["annotator"].id},
        format="json",
    ).json()
    assert body["changed"] == 3  # c1 0.95, a1 0.9, a2 0.8
    assert set(
        Instance.objects.filter(review_state="needs_fix").values_list("id", "assignee_id")
    ) == {
        (c1.id, w.users["annotator"].id),
        (a1.id, w.users["annotator"].id),
        (a2.id, w.users["annotator"].id),
    }


@pytest.mark.django_db
def test_to_fix_list_is_the_users_own(django_assert_max_num_queries):
    w = make_world()
    mine = _pseudo(w.assigned_image, 0.9)
    theirs = _pseudo(w.other_image, 0.4)
    reviewer = _client(w, "reviewer")
    assert _review(reviewer, mine).status_code == 200
    assert _review(reviewer, theirs).status_code == 200
    _pseudo(w.assigned_image, 0.3)  # pending: not to fix
    url = f"/api/projects/{w.project.id}/fixes/"

    annotator = _client(w, "annotator")
    annotator.get(url)  # warm the session
    # session + user, role + project, the count, the page, the tasks: none per row
    with django_assert_max_num_queries(7):
        body = annotator.get(url).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == mine.id and row["image"] == w.assigned_image.id and row["task"] == w.task.id
    assert (
        row["image_name"] == w.assigned_image.original_name
        and row["source"] == "mis"
        and row["score"] == 0.9
    )
    assert [r["id"] for r in _client(w, "annotator2").get(url).json()["results"]] == [theirs.id]
    assert _client(w, "reviewer").get(url).json()["count"] == 0
    assert _client(w, "outsider").get(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)


def _save(w, inst: Instance, user, mask: np.ndarray) -> bool:
    """``saves.masks_save`` as the worker calls it for a prompt of ``user`` on ``inst``."""
    from annotation.segmentation.interactive import dispatch

    rev = dispatch.bump_revision(inst.id)
    return saves.masks_save(
        _save_request(w, inst, user),
        {inst.id: mask},
        rev=rev,
        model_s=0.01,
        worker="test",
        cached=True,
    )


def _save_request(w, inst: Instance, user):
    from annotation.segmentation.interactive.request import MaskRequest

    return MaskRequest(
        image_id=inst.image_id,
        project_id=w.project.id,
        instance_id=inst.id,
        method="m2n2",
        backbone="effnet-lite0",
        rev=1,
        reply_channel="test.nobody",
        seq=1,
        received_at=time.time(),
        size_hw=(inst.image.height, inst.image.width),
        user_id=user.id,
    )


@pytest.mark.django_db
def test_the_corrected_mask_goes_back_to_the_queue_as_pending(django_capture_on_commit_callbacks):
    from annotation.segmentation.interactive import dispatch, keys

    w = make_world()
    inst = _pseudo(w.assigned_image, 0.6)
    assert _review(_client(w, "reviewer"), inst).status_code == 200
    image = w.assigned_image
    fixed = np.zeros((image.height, image.width), dtype=bool)
    fixed[10:30, 12:40] = True
    for pk in (inst.id, w.instance.id):  # ids repeat across test databases: forget older runs
        dispatch.redis_client().delete(keys.done(pk), keys.revision(pk))
    with django_capture_on_commit_callbacks() as pushes:
        assert _save(w, inst, w.users["annotator"], fixed)
    inst.refresh_from_db()
    assert inst.review_state == "pending" and inst.assignee_id is None
    assert (
        inst.source == "mis" and inst.model_name == "" and inst.author_id == w.users["annotator"].id
    )
    assert inst.area == 20 * 28 and inst.version == 3
    assert len(pushes) == 3  # the mask to the socket, instance.updated, instances.reviewed
    # back in the reviewer's queue, gone from the annotator's list
    queue = _client(w, "reviewer").get(f"/api/projects/{w.project.id}/review/?state=pending").json()
    assert inst.id in [r["id"] for r in queue["results"]]
    assert _client(w, "annotator").get(f"/api/projects/{w.project.id}/fixes/").json()["count"] == 0
    # more prompts on it keep it a pending pseudo label (it stays in the queue)
    fixed[30:35, 12:40] = True
    assert _save(w, inst, w.users["annotator"], fixed)
    inst.refresh_from_db()
    assert (inst.source, inst.review_state, inst.area) == ("mis", "pending", 25 * 28)
    # a human mask saved the same way stays what it was: the method's mask
    human = w.instance
    assert _save(w, human, w.users["annotator"], fixed)
    human.refresh_from_db()
    assert human.source == "manual" and human.review_state == "accepted"  # no prompts: manual


# -- the canvas socket ---------------------------------------------------------------------
async def _opened(username: str, image_id: int, task_id: int | None = None):
    from config.asgi import application

    headers = site_headers(await sync_to_async(session_cookie)(username))
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    message = {"type": "open", "seq": 1, "image_id": image_id}
    if task_id is not None:
        message["task_id"] = task_id
    await comm.send_json_to(message)
    reply = await comm.receive_json_from(timeout=20)
    assert reply["type"] == "opened", reply
    return comm, reply


def _world_with_fix():
    w = make_world()
    inst = _pseudo(w.assigned_image, 0.6)
    inst.review_state, inst.assignee_id = "needs_fix", w.users["annotator"].id
    inst.save()
    other = _pseudo(w.assigned_image, 0.5, x=10)  # a pending one: on every canvas, as before
    # annotator2 also holds the image in a task, so they can open it
    t = task_create(
        project=w.project,
        dataset=w.dataset,
        name="t2b",
        assignee_id=w.users["annotator2"].id,
        image_ids=[w.assigned_image.id],
    )
    return w, inst, other, t


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
async def test_opened_has_the_needs_fix_mask_for_its_assignee_only():
    w, inst, other, t2 = await sync_to_async(_world_with_fix)()
    comm, opened = await _opened("annotator", w.assigned_image.id, w.task.id)
    objects = {o["id"]: o for o in opened["objects"]}
    assert inst.id in objects and objects[inst.id]["review_state"] == "needs_fix"
    assert objects[inst.id]["rle"] is not None and objects[inst.id]["version"] == inst.version
    await comm.send_json_to({"type": "select_object", "seq": 2, "object_id": inst.id})
    assert (await comm.receive_json_from(timeout=10)) == {
        "type": "selected",
        "seq": 2,
        "object_id": inst.id,
    }
    await comm.disconnect()

    for username, task in (("annotator2", t2.id), ("reviewer", None), ("owner", None)):
        comm, opened = await _opened(username, w.assigned_image.id, task)
        ids = {o["id"] for o in opened["objects"]}
        assert inst.id not in ids and {other.id, w.instance.id} <= ids, username
        # nor can they touch it
        await comm.send_json_to(
            {"type": "click", "seq": 2, "object_id": inst.id, "x": 5, "y": 5, "positive": True}
        )
        error = await comm.receive_json_from(timeout=10)
        assert error["type"] == "error" and error["code"] == "not_found", error
        await comm.disconnect()
    assert await sync_to_async(lambda: Instance.objects.get(pk=inst.id).prompts.count())() == 0
