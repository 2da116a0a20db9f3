"""Deeply nested JSON on the sockets: an error reply, and the socket stays open."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from annotation.labeling.protocol import ProtocolError, parse
from tests.factories import make_world
from tests.sockets import session_cookie, site_headers

NESTED = "[" * 100_000


async def _connect(path: str, username: str) -> WebsocketCommunicator:
    from config.asgi import application

    cookie = await sync_to_async(session_cookie)(username)
    headers = site_headers(cookie)
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


@pytest.mark.parametrize(
    "text",
    [
        NESTED,
        "[" * 500 + "]" * 500,  # parses, but deeper than any message the schema allows
        '{"type": "ping", "seq": 4, "x": ' + "[" * 17 + "]" * 17 + "}",
    ],
)
def test_parse_refuses_deep_nesting_cheaply(text):
    with pytest.raises(ProtocolError, match="nested more than"):
        parse(text)


def test_parse_still_reads_strokes():
    text = (
        '{"type": "scribble", "seq": 2, "object_id": 3, "points": [[70, 50], [90, 70]], "width": 6}'
    )
    assert parse(text)["points"] == [[70, 50], [90, 70]]


@pytest.mark.django_db(transaction=True)
async def test_annotate_socket_answers_nested_json_with_an_error_and_stays_open():
    await sync_to_async(make_world)()
    comm = await _connect("/ws/annotate/", "annotator")
    await comm.send_to(text_data=NESTED[:60_000])  # under the size cap: the depth check answers
    error = await comm.receive_json_from(timeout=10)
    assert (
        error["type"] == "error" and error["code"] == "bad_request" and "nested" in error["message"]
    )
    await comm.send_json_to({"type": "ping", "seq": 1})
    assert (await comm.receive_json_from(timeout=10)) == {"type": "pong", "seq": 1}
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_events_socket_answers_nested_json_and_binary_and_stays_open():
    w = await sync_to_async(make_world)()
    comm = await _connect(f"/ws/projects/{w.project.id}/events/", "reviewer")
    await comm.send_to(text_data=NESTED)
    assert (await comm.receive_json_from(timeout=10))["type"] == "error"
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from(timeout=10))["type"] == "error"
    await comm.send_json_to({"type": "hello"})
    assert (await comm.receive_json_from(timeout=10)) == {
        "type": "error",
        "message": "this socket only sends events",
    }
    await comm.disconnect()
