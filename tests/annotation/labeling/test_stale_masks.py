"""A mask older than its prompts (a crash between logging a prompt and saving its mask) is
recomputed when its image is opened, and an export refuses it until then.

Real stack: the consumer in process, a real Celery worker running M2N2 on CPU, Postgres and
Redis. The crash is the state it leaves: prompt 2 in the log, the mask of prompt 1 stored.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from annotation.jobs.services import job_launch
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_update, prompt_append
from tests.factories import box_mask, wait_for_job

from .test_annotate_socket import SQUARE, _connect, _decode, _until, _world_with_square

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _export(world) -> object:
    job = job_launch(
        dataset=world.dataset, kind="export", params={"filter": "all"}, user=world.users["owner"]
    )
    return wait_for_job(job.id, {"succeeded", "failed"}, timeout=120)


async def test_a_stale_mask_is_recomputed_on_open_and_refused_by_export_until_then(
    celery_worker_proc,
):
    w, image = await sync_to_async(_world_with_square)()
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    await _until(comm, "opened")
    await comm.send_json_to({"type": "new_object", "seq": 2, "label_id": w.label.id})
    obj = (await _until(comm, "object"))["object"]
    await comm.send_json_to(
        {"type": "click", "seq": 3, "object_id": obj["id"], "x": 80, "y": 60, "positive": True}
    )
    first = _decode(await _until(comm, "mask"))
    await comm.disconnect()
    instance = await sync_to_async(Instance.objects.get)(pk=obj["id"])
    assert instance.mask_seqs == [1]

    # the crash: a brush stroke (prompt 2) is logged, its mask never computed
    await sync_to_async(prompt_append)(
        instance=instance,
        kind="edit",
        method="m2n2",
        author=w.users["annotator"],
        payload={"mode": "paint", "points": [[10, 10], [30, 10]], "width": 6},
    )
    job = await sync_to_async(_export)(w)
    assert job.state == "failed", job.result
    assert (
        "older than their prompts" in job.error
        and f"instances {instance.id} on images {image.id}" in job.error
    )

    # opening the image recomputes it, with no click from the person
    comm, connected, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    opened = await _until(comm, "opened")
    assert [p["seq"] for p in opened["objects"][0]["prompts"]] == [1, 2]
    reply = await _until(comm, "mask")
    assert reply["object_id"] == instance.id, reply
    mask = _decode(reply)
    x0, y0, _x1, _y1 = SQUARE
    assert mask[10, 20] and not first[10, 20] and mask[y0 + 20, x0 + 20]
    await comm.disconnect()
    stored = await sync_to_async(Instance.objects.get)(pk=instance.id)
    assert stored.mask_seqs == [1, 2] and stored.version == instance.version + 1

    # fresh now: a reopen computes nothing, and the export goes through
    comm, connected, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    await _until(comm, "opened")
    assert await comm.receive_nothing(timeout=3)
    await comm.disconnect()
    job = await sync_to_async(_export)(w)
    assert job.state == "succeeded", job.error


async def test_a_mask_set_by_hand_answers_the_prompts_as_they_stand(celery_worker_proc):
    w, image = await sync_to_async(_world_with_square)()
    comm, _connected, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    await _until(comm, "opened")
    await comm.send_json_to({"type": "new_object", "seq": 2, "label_id": w.label.id})
    obj = (await _until(comm, "object"))["object"]
    await comm.send_json_to(
        {"type": "click", "seq": 3, "object_id": obj["id"], "x": 80, "y": 60, "positive": True}
    )
    await _until(comm, "mask")
    await comm.disconnect()
    instance = await sync_to_async(Instance.objects.get)(pk=obj["id"])
    await sync_to_async(instance_update)(
        instance_id=instance.id,
        expected_version=instance.version,
        changes={"mask": await sync_to_async(box_mask)(image, 5, 5, 40, 40)},
    )
    stored = await sync_to_async(Instance.objects.get)(pk=instance.id)
    assert stored.mask_seqs == [1]
    job = await sync_to_async(_export)(w)
    assert job.state == "succeeded", job.error
