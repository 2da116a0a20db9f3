"""The task's next image is prefetched after a pause counted from the last mask, and a click
calls off a prefetch still queued (issue 19: clicks waited behind the next image's prefetch)."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from annotation.labeling import consumers
from tests.factories import add_images, make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
PAUSE_S = 0.3


@pytest.fixture
def prefetches(queued, monkeypatch):
    """Every prefetch the socket queued, as (image_id, cancel_key)."""
    from annotation.segmentation.interactive import dispatch

    sent: list[tuple[int, str | None]] = []
    monkeypatch.setattr(
        dispatch,
        "send_prefetch",
        lambda image_id, method, backbone, worker, cancel_key=None: sent.append(
            (image_id, cancel_key)
        ),
    )
    monkeypatch.setattr(consumers, "IDLE_PREFETCH_S", PAUSE_S)
    return sent


def _world():
    w = make_world()
    (following,) = add_images(w.dataset, 1, start_seed=80)
    w.task.images.add(following)
    return w, following


async def _until(comm, kind: str) -> dict:
    while True:
        message = await comm.receive_json_from(timeout=30)
        if message["type"] in (kind, "error"):
            return message


async def _quiet(comm, seconds: float) -> None:
    """Let ``seconds`` pass; whatever comes meanwhile must not be an error."""
    while not await comm.receive_nothing(timeout=seconds):
        message = await comm.receive_json_from()
        assert message["type"] != "error", message


async def _mask_arrives(request) -> None:
    """What a worker's saved mask sends the socket (no mask needed: the pause is the point)."""
    await get_channel_layer().send(
        request.reply_channel,
        {
            "type": "annotate.mask",
            "instance_id": request.instance_id,
            "rev": request.rev,
            "seq": request.seq,
            "received_at": time.time(),
            "masks": [],
            "model_ms": 1.0,
            "worker": "test",
            "cached": True,
        },
    )


async def test_waiting_for_a_mask_is_no_pause_and_a_click_calls_off_the_prefetch(
    queued, prefetches
):
    from annotation.segmentation.interactive import dispatch
    from config.asgi import application

    w, following = await sync_to_async(_world)()
    headers = site_headers(await sync_to_async(session_cookie)("annotator"))
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    assert (await comm.connect(timeout=10))[0]
    await comm.send_json_to(
        {"type": "open", "seq": 1, "image_id": w.assigned_image.id, "task_id": w.task.id}
    )
    assert (await _until(comm, "opened"))["next_image_id"] == following.id
    assert prefetches == [(w.assigned_image.id, None)]  # the open image, at once
    await comm.send_json_to({"type": "new_object", "seq": 2})
    obj = (await _until(comm, "object"))["object"]["id"]
    await comm.send_json_to(
        {"type": "click", "seq": 3, "object_id": obj, "x": 5, "y": 5, "positive": True}
    )
    # the mask is slow: the wait is no pause, so nothing of the next image is queued
    await _quiet(comm, 3 * PAUSE_S)
    assert [p for p in prefetches if p[0] == following.id] == []
    # the mask comes; after a pause from it, the next image is queued, cancellable
    await _mask_arrives(queued[-1])
    await _quiet(comm, 3 * PAUSE_S)
    (first,) = [p for p in prefetches if p[0] == following.id]
    assert first[1] is not None
    # a click before the worker took it calls it off (the worker would find its key gone)...
    await comm.send_json_to(
        {"type": "click", "seq": 4, "object_id": obj, "x": 6, "y": 6, "positive": True}
    )
    await _quiet(comm, 3 * PAUSE_S)
    assert not await sync_to_async(dispatch.cancel_prefetch)(first[1])
    assert len([p for p in prefetches if p[0] == following.id]) == 1
    # ...and the next pause queues it again
    await _mask_arrives(queued[-1])
    await _quiet(comm, 3 * PAUSE_S)
    again = [p for p in prefetches if p[0] == following.id]
    assert len(again) == 2 and again[1][1] not in (None, first[1])
    await comm.disconnect()


async def test_pings_neither_start_nor_stop_the_pause(queued, prefetches):
    from config.asgi import application

    w, following = await sync_to_async(_world)()
    headers = site_headers(await sync_to_async(session_cookie)("annotator"))
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    assert (await comm.connect(timeout=10))[0]
    await comm.send_json_to(
        {"type": "open", "seq": 1, "image_id": w.assigned_image.id, "task_id": w.task.id}
    )
    await _until(comm, "opened")
    for seq in range(2, 5):  # pings every PAUSE_S / 2: they used to restart the timer
        await comm.send_json_to({"type": "ping", "seq": seq})
        await _until(comm, "pong")
        await _quiet(comm, PAUSE_S / 2)
    await _quiet(comm, 2 * PAUSE_S)
    assert [p[0] for p in prefetches].count(following.id) == 1
    await comm.disconnect()


def test_the_worker_skips_a_prefetch_called_off_and_runs_one_it_takes(monkeypatch):
    from annotation.labeling import tasks
    from annotation.segmentation.interactive import dispatch, worker

    computed: list[int] = []
    monkeypatch.setattr(worker, "image_state", lambda image_id, *args: computed.append(image_id))
    monkeypatch.setattr(worker, "hostname", lambda: None)
    called_off, kept = dispatch.prefetch_start(), dispatch.prefetch_start()
    assert dispatch.cancel_prefetch(called_off)  # the click came first
    tasks.prefetch(1, "any", "any", called_off)
    tasks.prefetch(2, "any", "any", kept)
    tasks.prefetch(3, "any", "any")  # the open image's: not cancellable
    assert computed == [2, 3]
    assert not dispatch.cancel_prefetch(kept)  # the worker took it: too late to call off


def test_a_click_stops_the_next_images_prefetch_the_worker_started(monkeypatch):
    """The click is queued for this worker while it computes the next image's state: the
    prefetch stops at its next checkpoint, caches nothing, and the click's task clears the
    signal so that a later prefetch runs through (issue 19: clicks waited behind prefetches)."""
    from annotation.labeling import tasks
    from annotation.segmentation.interactive import dispatch, keys, worker
    from annotation.segmentation.interactive.request import MaskRequest

    w = make_world()
    image = w.assigned_image
    sent: list[str] = []
    monkeypatch.setattr(dispatch, "_send", lambda name, args, to: sent.append(name))
    monkeypatch.setattr(worker, "hostname", lambda: "prefetch-test-worker")
    monkeypatch.setattr(worker._state, "cache", None)  # this test's own, empty cache
    state = ("m2n2", "tiny-effnet")
    request = MaskRequest(
        image_id=image.id,
        project_id=w.project.id,
        instance_id=10**9,  # no such object: the task returns once it has taken the click
        method=state[0],
        backbone=state[1],
        rev=1,
        reply_channel="none",
        user_id=w.users["annotator"].id,
        seq=1,
        received_at=time.time(),
        size_hw=(image.height, image.width),
    )
    dispatch.send_predict(request, "prefetch-test-worker")  # the click, queued
    assert sent == [dispatch.PREDICT_TASK] and dispatch.click_waiting("prefetch-test-worker")
    tasks.prefetch(image.id, *state, dispatch.prefetch_start())
    assert worker.cache().get((image.id, *state)) is None  # stopped: nothing half-made kept
    assert not dispatch.redis_client().exists(keys.holder(image.id, *state))  # nor claimed
    dispatch.mark_answered(request.instance_id, request.rev)
    tasks.predict(request.sent_now().as_message())  # the click runs: the signal is cleared
    assert not dispatch.click_waiting("prefetch-test-worker")
    tasks.prefetch(image.id, *state, dispatch.prefetch_start())
    assert worker.cache().get((image.id, *state)) is not None
    assert dispatch.redis_client().get(keys.holder(image.id, *state)) == "prefetch-test-worker"
