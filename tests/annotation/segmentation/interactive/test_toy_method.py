"""Adding a method is one registration: ``toy_method`` (a test module, nothing in the platform
names it) is offered on the annotation page, its prompt kinds are what the socket accepts, and a
real worker that loaded it as a plugin answers a box with the box's mask."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from annotation.labeling.models import Instance, Prompt
from tests.annotation.labeling.test_annotate_socket import (
    _connect,
    _decode,
    _until,
    _world_with_square,
)
from tests.annotation.segmentation.interactive import toy_method

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

PLUGIN = toy_method.__name__


@pytest.fixture
def toy_worker(settings, monkeypatch, tmp_path):
    """A real interactive worker that imports the plugin (the web side, in process, reads the
    same setting); stopped by pid after the test."""
    from annotation.cli.services import stop_processes
    from annotation.segmentation.interactive import dispatch
    from tests.conftest import start_worker

    # a slow first answer (the worker may be loading another method's model for the open's
    # prefetch) must not be re-sent to the shared queue, where a worker without the plugin waits
    settings.MASKWRIGHT = {
        **settings.MASKWRIGHT,
        "METHOD_PLUGINS": [PLUGIN],
        "INTERACTIVE_RETRY_S": 60,
    }
    monkeypatch.setenv("MASKWRIGHT_METHOD_PLUGINS", PLUGIN)
    monkeypatch.setenv("MASKWRIGHT_INTERACTIVE_WARMUP", "0")
    name = f"toy-{os.getpid()}"
    proc = start_worker(name, tmp_path / "toy-worker.log", queues="interactive")
    hostname = f"{name}@{socket.gethostname()}"
    deadline = time.monotonic() + 30
    while not dispatch.is_alive(hostname):
        assert time.monotonic() < deadline, (tmp_path / "toy-worker.log").read_text()[-3000:]
        time.sleep(0.1)
    try:
        yield hostname
    finally:
        stop_processes([proc])


async def test_a_method_registered_only_in_a_test_works_over_the_socket(toy_worker):
    from annotation.segmentation.interactive import dispatch

    _w, image = await sync_to_async(_world_with_square)()
    # the session sticks to the worker that loaded the plugin (another test's worker may run)
    await sync_to_async(dispatch.claim)(image.id, toy_method.NAME, "none", toy_worker)
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id})
    opened = await _until(comm, "opened")
    offered = {m["name"]: m for m in opened["methods"]}
    assert offered[toy_method.NAME] == {
        "name": "toy-box",
        "label": "Toy box filler",
        "backbones": ["none"],
        "multi_object": False,
        "prompts": ["box", "click"],
    }
    await comm.send_json_to({"type": "set_method", "seq": 2, "method": toy_method.NAME})
    assert (await _until(comm, "method"))["method"] == toy_method.NAME
    await comm.send_json_to({"type": "new_object", "seq": 3})
    object_id = (await _until(comm, "object"))["object"]["id"]

    # a kind it does not declare is refused before anything is logged
    await comm.send_json_to(
        {"type": "scribble", "seq": 4, "object_id": object_id, "points": [[5, 5], [9, 9]]}
    )
    refused = await _until(comm, "mask")
    assert (
        refused["type"] == "error"
        and refused["code"] == "bad_request"
        and "box, click" in refused["message"]
    )

    await comm.send_json_to(
        {"type": "box", "seq": 5, "object_id": object_id, "x0": 20, "y0": 10, "x1": 59, "y1": 49}
    )
    answer = await _until(comm, "mask")
    assert answer["type"] == "mask" and answer["seq"] == 5 and answer["worker"] == toy_worker, (
        answer
    )
    expected = np.zeros((image.height, image.width), dtype=bool)
    expected[10:50, 20:60] = True
    assert (_decode(answer) == expected).all()

    await comm.send_json_to(
        {"type": "click", "seq": 6, "object_id": object_id, "x": 100, "y": 100, "positive": True}
    )
    answer = await _until(comm, "mask")
    mask = _decode(answer)
    assert mask[100, 100] and mask[10:50, 20:60].all() and mask.sum() > expected.sum()

    instance = await sync_to_async(Instance.objects.get)(pk=object_id)
    assert instance.model_name == "toy-box/none" and instance.area == int(mask.sum())
    logged = await sync_to_async(list)(
        Prompt.objects.filter(instance_id=object_id).values_list("kind", "method")
    )
    assert logged == [("box", "toy-box"), ("click", "toy-box")]
    await comm.disconnect()


async def test_ranked_candidates_reach_the_socket_and_a_choice_is_a_prompt(toy_worker):
    """A mask reply names the method's candidates; ``candidate`` shows another one, is undone
    like a click, and a new click of the object shows its best mask again."""
    from annotation.segmentation.interactive import dispatch

    _w, image = await sync_to_async(_world_with_square)()
    await sync_to_async(dispatch.claim)(image.id, toy_method.NAME, "none", toy_worker)
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to(
        {"type": "open", "seq": 1, "image_id": image.id, "method": toy_method.NAME}
    )
    assert (await _until(comm, "opened"))["method"] == toy_method.NAME
    await comm.send_json_to({"type": "new_object", "seq": 2})
    object_id = (await _until(comm, "object"))["object"]["id"]
    scores = list(toy_method.SCORES)

    async def send(seq: int, kind: str, **fields) -> dict:
        await comm.send_json_to({"type": kind, "seq": seq, "object_id": object_id, **fields})
        return await _until(comm, "mask")

    best = await send(3, "click", x=100, y=100, positive=True)
    assert best["candidates"] == {"count": 3, "index": 0, "scores": scores}, best
    second = await send(4, "candidate", index=1)
    assert second["seq"] == 4 and second["candidates"] == {"count": 3, "index": 1, "scores": scores}
    assert _decode(second).sum() > _decode(best).sum() and second["can_undo"]

    refused = await send(5, "candidate", index=8)  # bounded by the schema, before any service
    assert refused["type"] == "error" and refused["code"] == "bad_request", refused

    undone = await send(6, "undo")
    assert undone["candidates"]["index"] == 0 and (_decode(undone) == _decode(best)).all()
    redone = await send(7, "redo")
    assert redone["candidates"]["index"] == 1 and (_decode(redone) == _decode(second)).all()
    reset = await send(8, "click", x=20, y=20, positive=True)
    assert reset["candidates"]["index"] == 0 and not _decode(reset)[100, 110]
    logged = await sync_to_async(list)(
        Prompt.objects.filter(instance_id=object_id).values_list("kind", "payload")
    )
    assert [k for k, _ in logged] == ["click", "candidate", "click"] and logged[1][1] == {
        "index": 1
    }
    await comm.disconnect()
