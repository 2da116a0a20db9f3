"""The project event socket: session auth, members only, pushes after commit over Redis."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from annotation.labeling.services import instance_update
from tests.factories import box_mask, make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _connect(project_id: int, cookie: bytes | None):
    from config.asgi import application

    headers = site_headers(cookie)
    comm = WebsocketCommunicator(application, f"/ws/projects/{project_id}/events/", headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def test_member_receives_mask_changes_after_commit():
    w = await sync_to_async(make_world)()
    comm, connected, _ = await _connect(
        w.project.id, await sync_to_async(session_cookie)("reviewer")
    )
    assert connected
    await sync_to_async(instance_update)(
        instance_id=w.instance.id,
        expected_version=1,
        changes={"mask": box_mask(w.assigned_image, 0, 0, 3, 3)},
    )
    message = await comm.receive_json_from(timeout=5)
    assert message == {
        "type": "event",
        "event": "instance.updated",
        "payload": {"instance_id": w.instance.id, "image_id": w.assigned_image.id, "version": 2},
    }
    await comm.send_json_to({"type": "hello"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "error"
    await comm.disconnect()


async def test_an_idle_socket_still_receives():
    """Regression: redis-py 8 reads with a 5 s timeout, channels_redis blocks 5 s in BZPOPMIN;
    a socket that received nothing for 5 s used to die with "Timeout reading from redis"."""
    import asyncio

    w = await sync_to_async(make_world)()
    comm, connected, _ = await _connect(
        w.project.id, await sync_to_async(session_cookie)("reviewer")
    )
    assert connected
    await asyncio.sleep(6.5)
    await sync_to_async(instance_update)(
        instance_id=w.instance.id,
        expected_version=1,
        changes={"mask": box_mask(w.assigned_image, 0, 0, 3, 3)},
    )
    assert (await comm.receive_json_from(timeout=5))["event"] == "instance.updated"
    await comm.disconnect()


async def test_outsider_and_anonymous_are_refused():
    w = await sync_to_async(make_world)()
    for cookie in (await sync_to_async(session_cookie)("outsider"), None):
        _comm, connected, code = await _connect(w.project.id, cookie)
        assert not connected and code == 4404
    _comm, connected, code = await _connect(987654, await sync_to_async(session_cookie)("owner"))
    assert not connected
