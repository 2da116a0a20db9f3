"""The project event socket tells an annotator only of the images of their tasks; reviewers
and admins hear of everything. Real Redis channel layer, pushes after commit."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from annotation.jobs.engine import push_job
from annotation.jobs.models import Job
from annotation.labeling.review import instance_review
from annotation.labeling.services import instance_update
from tests.factories import box_mask, make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _events(project_id: int, username: str):
    from config.asgi import application

    headers = site_headers(await sync_to_async(session_cookie)(username))
    comm = WebsocketCommunicator(application, f"/ws/projects/{project_id}/events/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


def _touch(instance, x: int) -> None:
    instance.refresh_from_db()
    instance_update(
        instance_id=instance.id,
        expected_version=instance.version,
        changes={"mask": box_mask(instance.image, 0, 0, x, x)},
    )


def _job_progress(w) -> None:
    push_job(Job.objects.create(project=w.project, dataset=w.dataset, kind="verify"))


async def _received(comm) -> list[tuple[str, dict]]:
    out = []
    while not await comm.receive_nothing(timeout=1):
        message = await comm.receive_json_from(timeout=1)
        out.append((message["event"], message["payload"]))
    return out


async def test_an_annotator_hears_only_of_the_images_of_their_tasks():
    w = await sync_to_async(make_world)()
    annotator = await _events(w.project.id, "annotator")
    reviewer = await _events(w.project.id, "reviewer")

    # about an image outside their tasks: a mask change, a review, a job's progress
    await sync_to_async(_touch)(w.other_instance, 3)
    await sync_to_async(instance_review)(
        instance_id=w.other_instance.id, action="reject", expected_version=2
    )
    await sync_to_async(_job_progress)(w)
    # about the image of their task
    await sync_to_async(_touch)(w.instance, 4)
    await sync_to_async(instance_review)(
        instance_id=w.instance.id, action="reject", expected_version=2
    )

    mine, other = w.assigned_image.id, w.other_image.id
    got = await _received(annotator)
    assert got == [
        ("instance.updated", {"instance_id": w.instance.id, "image_id": mine, "version": 2}),
        ("instance.updated", {"instance_id": w.instance.id, "image_id": mine, "version": 3}),
        ("instances.reviewed", {"review_state": "rejected", "count": 1, "ids": [w.instance.id]}),
    ]
    everything = await _received(reviewer)
    assert [event for event, _ in everything] == [
        "instance.updated",
        "instance.updated",
        "instances.reviewed",
        "job.progress",
        "instance.updated",
        "instance.updated",
        "instances.reviewed",
    ]
    assert {p.get("image_id") for _, p in everything} >= {mine, other}
    await annotator.disconnect()
    await reviewer.disconnect()


async def test_a_member_removed_while_connected_hears_nothing_more():
    w = await sync_to_async(make_world)()
    annotator = await _events(w.project.id, "annotator")
    await sync_to_async(w.project.memberships.filter(user__username="annotator").delete)()
    await sync_to_async(_touch)(w.instance, 4)
    assert await _received(annotator) == []
    await annotator.disconnect()
