"""The annotation socket end to end: consumer in process, a real Celery worker running M2N2
(effnet-lite0) on CPU, Postgres and Redis. Every answer is a real mask of a real image."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from PIL import Image as PILImage

from annotation.common import rle
from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_upload
from annotation.labeling.models import Instance, Prompt
from tests.factories import make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

# A dark, textured 160×120 image with one bright square (x 50..110, y 30..90).
SQUARE = (50, 30, 110, 90)


def square_image_bytes() -> bytes:
    rng = np.random.default_rng(1)
    arr = rng.integers(10, 50, size=(120, 160, 3), dtype=np.uint8)
    x0, y0, x1, y1 = SQUARE
    arr[y0:y1, x0:x1] = rng.integers(200, 240, size=(y1 - y0, x1 - x0, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def _world_with_square():
    w = make_world()
    report = dataset_upload(
        dataset=w.dataset, uploads=[Upload("square.png", io.BytesIO(square_image_bytes()))]
    )
    image = Image.objects.get(pk=report.files[0].image_id)
    w.task.images.add(image)
    return w, image


async def _connect(username: str | None):
    from config.asgi import application

    headers = site_headers(await sync_to_async(session_cookie)(username) if username else None)
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    connected, code = await comm.connect(timeout=10)
    return comm, connected, code


async def _until(comm, kind: str, timeout: float = 120):
    """Skip other messages until one of ``kind`` arrives."""
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["type"] == kind or message["type"] == "error":
            return message


async def _open_with_object(username: str, image_id: int):
    """A socket of ``username`` with the image open (seq 1) and one new object (seq 2)."""
    comm, connected, _ = await _connect(username)
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image_id})
    assert (await _until(comm, "opened"))["type"] == "opened"
    await comm.send_json_to({"type": "new_object", "seq": 2})
    return comm, (await _until(comm, "object"))["object"]["id"]


async def _masks_until_final(comm, seq: int) -> dict[int, np.ndarray]:
    """The masks of a multi-object answer to prompt ``seq`` (one reply per changed object,
    the last marked final), by object id."""
    got = {}
    while True:
        reply = await _until(comm, "mask")
        assert reply["type"] == "mask" and reply["seq"] == seq, reply
        got[reply["object_id"]] = _decode(reply)
        if reply["final"]:
            return got


def _decode(message) -> np.ndarray:
    """The full-image mask of a ``mask`` reply (120×160)."""
    mask = np.zeros((120, 160), dtype=bool)
    if message["box"] is None:
        return mask
    x, y, w, h = message["box"]
    mask[y : y + h, x : x + w] = rle.decode(message["rle"])
    return mask


async def test_click_undo_edit_and_reopen(celery_worker_proc):
    w, image = await sync_to_async(_world_with_square)()
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    opened = await _until(comm, "opened")
    assert opened["seq"] == 1 and opened["image"]["width"] == 160 and opened["objects"] == []
    assert opened["method"] == "m2n2" and {m["name"] for m in opened["methods"]} >= {"m2n2", "salt"}

    await comm.send_json_to({"type": "new_object", "seq": 2, "label_id": w.label.id})
    obj = (await _until(comm, "object"))["object"]
    await comm.send_json_to(
        {"type": "click", "seq": 3, "object_id": obj["id"], "x": 80, "y": 60, "positive": True}
    )
    reply = await _until(comm, "mask")
    assert reply["seq"] == 3 and reply["object_id"] == obj["id"] and reply["final"], reply
    mask = _decode(reply)
    x0, y0, x1, y1 = SQUARE
    inside = mask[y0:y1, x0:x1].mean()
    outside = (mask.sum() - mask[y0:y1, x0:x1].sum()) / (mask.size - (x1 - x0) * (y1 - y0))
    assert inside > 0.8 and outside < 0.05, (inside, outside)
    assert reply["model_ms"] > 0 and reply["total_ms"] >= reply["model_ms"] and reply["can_undo"]
    stored = await sync_to_async(Instance.objects.get)(pk=obj["id"])
    assert (
        stored.source == "m2n2"
        and stored.area == int(mask.sum())
        and stored.version == reply["version"]
    )

    # a brush stroke outside the square is part of the mask; undo takes it away again
    await comm.send_json_to(
        {
            "type": "edit",
            "seq": 4,
            "object_id": obj["id"],
            "mode": "paint",
            "points": [[10, 10], [30, 10]],
            "width": 6,
        }
    )
    painted = _decode(await _until(comm, "mask"))
    assert painted[10, 20] and painted[y0 + 20, x0 + 20]
    await comm.send_json_to({"type": "undo", "seq": 5, "object_id": obj["id"]})
    undone = await _until(comm, "mask")
    assert undone["seq"] == 5 and not _decode(undone)[10, 20] and undone["can_redo"]

    # reconnect: the same objects, prompts and mask come back from the log
    await comm.disconnect()
    comm, connected, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id})
    again = await _until(comm, "opened")
    (state,) = again["objects"]
    assert [p["kind"] for p in state["prompts"]] == ["click"] and state["can_redo"]
    assert np.array_equal(_decode(state), _decode(undone))
    prompts = await sync_to_async(
        lambda: list(Prompt.objects.filter(instance_id=obj["id"]).values_list("kind", "undone"))
    )()
    assert prompts == [("click", False), ("edit", True)]
    await comm.disconnect()


async def test_bad_messages_get_errors_and_change_nothing(celery_worker_proc):
    w, image = await sync_to_async(_world_with_square)()
    comm, mine = await _open_with_object("annotator", image.id)
    before = await sync_to_async(Prompt.objects.count)()
    bad = [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"type": "click", "seq": 2, "object_id": 1, "x": 5}),  # missing fields
        json.dumps({"type": "explode", "seq": 3}),
        json.dumps(
            {"type": "click", "seq": 4, "object_id": mine, "x": 5, "y": 5, "positive": True, "z": 1}
        ),
        json.dumps(
            {
                "type": "click",
                "seq": 5,
                "object_id": w.instance.id,
                "x": 5,
                "y": 5,
                "positive": True,
            }
        ),
        json.dumps(
            {"type": "click", "seq": 6, "object_id": 10**12, "x": 5, "y": 5, "positive": True}
        ),
        json.dumps({"type": "scribble", "seq": 7, "object_id": mine, "points": [[5, 5]] * 10001}),
        json.dumps({"type": "undo", "seq": 8, "object_id": mine}),  # nothing to undo
        json.dumps({"type": "open", "seq": 9, "image_id": w.other_image.id}),  # not their task
    ]
    codes = []
    for text in bad:
        await comm.send_to(text_data=text)
        reply = await comm.receive_json_from(timeout=10)
        assert reply["type"] == "error", (text[:80], reply)
        codes.append(reply["code"])
    assert codes[:5] == ["bad_request"] * 5
    assert codes[5:7] == ["not_found", "not_found"] and codes[9] == "not_found"
    assert codes[7] == "bad_request" and codes[8] == "nothing_to_undo"
    # a click outside the image is refused by the service with the image's size in the message
    await comm.send_json_to(
        {"type": "click", "seq": 10, "object_id": mine, "x": 500, "y": 5, "positive": True}
    )
    outside = await comm.receive_json_from(timeout=10)
    assert outside["type"] == "error" and "outside" in outside["message"]
    assert await sync_to_async(Prompt.objects.count)() == before
    # the socket still works after all that
    await comm.send_json_to({"type": "ping", "seq": 11})
    assert (await comm.receive_json_from(timeout=10)) == {"type": "pong", "seq": 11}
    await comm.disconnect()


async def test_anonymous_is_refused_and_outsider_cannot_open():
    _w, image = await sync_to_async(_world_with_square)()
    _, connected, code = await _connect(None)
    assert not connected and code == 4401
    comm, connected, _ = await _connect("annotator2")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id})
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "error" and reply["code"] == "not_found"
    await comm.disconnect()


async def test_killed_worker_the_next_click_is_answered_by_another(
    celery_worker_proc, tmp_path, settings
):
    """The session sticks to worker A (it holds the image); A is killed with SIGKILL right
    after a click; the next click is answered by the other worker, and every prompt is logged."""
    import os
    import signal

    from annotation.cli.services import stop_processes
    from annotation.segmentation.interactive import dispatch
    from tests.conftest import start_worker

    w, image = await sync_to_async(_world_with_square)()
    name = f"victim-{os.getpid()}"
    victim = await sync_to_async(start_worker)(name, tmp_path / "victim.log", "interactive")
    try:
        host = await _wait_alive(name)
        # pin the image to the victim, as if it had served the image before
        await sync_to_async(dispatch.claim)(image.id, "m2n2", "effnet-lite0", host)
        comm, _, _ = await _connect("annotator")
        await comm.send_json_to(
            {"type": "open", "seq": 1, "image_id": image.id, "task_id": w.task.id}
        )
        await _until(comm, "opened")
        await comm.send_json_to({"type": "new_object", "seq": 2})
        obj = (await _until(comm, "object"))["object"]["id"]
        await comm.send_json_to(
            {"type": "click", "seq": 3, "object_id": obj, "x": 80, "y": 60, "positive": True}
        )
        first = await _until(comm, "mask")
        assert first["worker"] == host, first
        os.kill(victim.pid, signal.SIGKILL)
        await sync_to_async(victim.wait)(timeout=10)
        await comm.send_json_to(
            {"type": "click", "seq": 4, "object_id": obj, "x": 20, "y": 20, "positive": False}
        )
        second = await _until(comm, "mask", timeout=60)
        assert second["type"] == "mask" and second["seq"] == 4 and second["worker"] != host, second
        logged = await sync_to_async(
            lambda: list(Prompt.objects.filter(instance_id=obj).values_list("seq", "kind"))
        )()
        assert logged == [(1, "click"), (2, "click")]
        await comm.disconnect()
    finally:
        await sync_to_async(stop_processes)([victim])


async def _wait_alive(name: str, timeout: float = 60) -> str:
    """The full hostname of worker ``name`` once its heartbeat is in Redis (after warm-up)."""
    import asyncio
    import time

    from annotation.segmentation.interactive import dispatch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for host in await sync_to_async(dispatch.alive_workers)():
            if host.startswith(f"{name}@"):
                return host
        await asyncio.sleep(0.2)
    raise AssertionError(f"worker {name} never reported alive")


async def test_rapid_clicks_every_one_logged_and_answered_by_a_mask_as_new(celery_worker_proc):
    """Clicks faster than the model: each is logged; the worker computes the log as it stands,
    so one mask may answer several clicks (it names the newest seq it covers)."""
    _w, image = await sync_to_async(_world_with_square)()
    comm, obj = await _open_with_object("annotator", image.id)
    points = [(80, 60, True), (60, 40, True), (100, 80, True), (10, 10, False), (150, 110, False)]
    for i, (x, y, positive) in enumerate(points):
        await comm.send_json_to(
            {"type": "click", "seq": 3 + i, "object_id": obj, "x": x, "y": y, "positive": positive}
        )
    seqs = []
    while not seqs or seqs[-1] < 3 + len(points) - 1:
        reply = await _until(comm, "mask")
        assert reply["type"] == "mask", (reply, seqs)
        seqs.append(reply["seq"])
    assert seqs == sorted(seqs), seqs  # never an older answer after a newer one
    logged = await sync_to_async(
        lambda: Prompt.objects.filter(instance_id=obj, undone=False).count()
    )()
    assert logged == len(points)
    stored = await sync_to_async(Instance.objects.get)(pk=obj)
    assert np.array_equal(rle.decode(stored.mask), _decode(reply))
    await comm.disconnect()


async def test_salt_answers_for_every_object_at_once(celery_worker_proc):
    """SALT is multi-object: a prompt on one object re-solves the label map, and the socket
    gets a mask for each object that changed; the masks never overlap."""
    _w, image = await sync_to_async(_world_with_square)()
    comm, _, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "method": "salt"})
    opened = await _until(comm, "opened")
    assert opened["method"] == "salt"
    ids = []
    for seq in (2, 3):
        await comm.send_json_to({"type": "new_object", "seq": seq})
        ids.append((await _until(comm, "object"))["object"]["id"])
    square, background = ids
    await comm.send_json_to(
        {
            "type": "scribble",
            "seq": 4,
            "object_id": square,
            "points": [[70, 50], [90, 70]],
            "width": 6,
        }
    )
    first = await _until(comm, "mask")
    assert first["object_id"] == square and first["final"]
    assert _decode(first).mean() < 0.5  # the border stands for background until one is drawn
    # a second object: the background stroke; both objects come back, disjoint
    await comm.send_json_to(
        {
            "type": "scribble",
            "seq": 5,
            "object_id": background,
            "points": [[5, 5], [150, 5], [150, 115]],
            "width": 6,
        }
    )
    got = await _masks_until_final(comm, 5)
    assert background in got
    masks = {k: got.get(k) for k in ids}
    if masks[square] is None:  # unchanged by the second stroke: it kept its first mask
        masks[square] = _decode(first)
    assert not (masks[square] & masks[background]).any()
    x0, y0, x1, y1 = SQUARE
    assert masks[square][y0 + 5 : y1 - 5, x0 + 5 : x1 - 5].mean() > 0.9
    assert (
        masks[background][:20, :].mean() > 0.5
    )  # shared with the border, which stands for background
    await comm.disconnect()


async def test_the_tasks_next_image_is_prefetched_when_the_annotator_pauses(celery_worker_proc):
    import asyncio

    from annotation.segmentation.interactive import dispatch, keys

    w, image = await sync_to_async(_world_with_square)()
    comm, _, _ = await _connect("annotator")
    await comm.send_json_to(
        {"type": "open", "seq": 1, "image_id": w.assigned_image.id, "task_id": w.task.id}
    )
    opened = await _until(comm, "opened")
    assert opened["next_image_id"] == image.id
    key = keys.holder(image.id, "m2n2", "effnet-lite0")
    holder = None
    for _ in range(100):  # 1.5 s of quiet, then the worker computes it and claims it
        holder = await sync_to_async(dispatch.redis_client().get)(key)
        if holder:
            break
        await asyncio.sleep(0.1)
    assert holder and holder.startswith("pytest-"), holder
    await comm.disconnect()


async def test_brush_edits_on_a_pseudo_label_keep_the_mask_it_came_with(celery_worker_proc):
    """A pseudo label (or an import) has a mask but no prompts: a brush stroke adds to that
    mask instead of replacing it, and undoing the stroke gives the mask back exactly."""
    from annotation.labeling.services import instance_create
    from tests.factories import box_mask

    _w, image = await sync_to_async(_world_with_square)()
    base = await sync_to_async(box_mask)(image, 50, 30, 110, 90)
    pseudo = await sync_to_async(instance_create)(
        image=image, mask=base, source="mis", score=0.7, pseudo=True
    )
    comm, _, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id})
    opened = await _until(comm, "opened")
    assert pseudo.id in {o["id"] for o in opened["objects"]}
    await comm.send_json_to(
        {
            "type": "edit",
            "seq": 2,
            "object_id": pseudo.id,
            "mode": "paint",
            "points": [[5, 5], [30, 5]],
            "width": 4,
        }
    )
    painted = _decode(await _until(comm, "mask"))
    expected = rle.decode(base)
    assert painted[5, 15] and (painted | ~expected).all()  # the box is all still there
    await comm.send_json_to(
        {
            "type": "edit",
            "seq": 3,
            "object_id": pseudo.id,
            "mode": "erase",
            "points": [[80, 60]],
            "width": 10,
        }
    )
    erased = _decode(await _until(comm, "mask"))
    assert not erased[60, 80] and erased[35, 55]
    for seq in (4, 5):
        await comm.send_json_to({"type": "undo", "seq": seq, "object_id": pseudo.id})
        reply = await _until(comm, "mask")
    assert reply["type"] == "mask" and (_decode(reply) == expected).all()
    await comm.disconnect()
