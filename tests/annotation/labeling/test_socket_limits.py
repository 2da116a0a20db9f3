"""One client must not stall everyone: the annotation socket's rate limit, the per-object
prompt cap and the stroke size cap. The consumer runs in process on real Postgres and Redis;
the Celery hand-off is recorded instead of sent, so the tests count exactly what was queued
(and leave nothing in the shared interactive queue for later tests)."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from annotation.labeling.models import Prompt
from tests.factories import make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _limits(settings, **values) -> None:
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, **values}


async def _socket(image_id: int):
    """The annotator's socket with ``image_id`` open (seq 1) and a new object (seq 2)."""
    from config.asgi import application

    headers = site_headers(await sync_to_async(session_cookie)("annotator"))
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    connected, code = await comm.connect(timeout=10)
    assert connected, code
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image_id})
    assert (await comm.receive_json_from(timeout=10))["type"] == "opened"
    await comm.send_json_to({"type": "new_object", "seq": 2})
    return comm, (await comm.receive_json_from(timeout=10))["object"]["id"]


async def _replies(comm, seq: int = 10_000) -> list[dict]:
    """Every reply to what was sent so far: a ping ``seq`` goes last, and the socket answers
    in order (a reply to it, pong or error, ends the list and is left out). Masks never come:
    the Celery hand-off is recorded, not sent."""
    await comm.send_json_to({"type": "ping", "seq": seq})
    out = []
    while True:
        reply = await comm.receive_json_from(timeout=30)
        if reply["seq"] == seq:
            return out
        out.append(reply)


def _click(seq: int, object_id: int) -> dict:
    return {
        "type": "click",
        "seq": seq,
        "object_id": object_id,
        "x": 10 + seq % 40,
        "y": 20,
        "positive": True,
    }


async def _count_prompts(object_id: int) -> int:
    return await sync_to_async(Prompt.objects.filter(instance_id=object_id).count)()


async def test_a_burst_of_clicks_is_refused_past_the_burst_allowance(settings, queued):
    # A slow refill keeps the bound tight on a busy machine; the cap is out of the way here.
    _limits(settings, SOCKET_RATE=5, SOCKET_BURST=40, MAX_PROMPTS_PER_OBJECT=1000)
    w = await sync_to_async(make_world)()
    comm, obj = await _socket(w.assigned_image.id)  # seq 1 and 2 spent two tokens
    started = time.monotonic()
    for seq in range(3, 203):
        await comm.send_json_to(_click(seq, obj))
    replies = await _replies(comm)
    elapsed = time.monotonic() - started
    await comm.disconnect()

    refused = [r for r in replies if r["type"] == "error"]
    assert refused and all(r["code"] == "rate_limited" for r in refused), replies[:3]
    assert all(0 < r["retry_after"] <= 1 / 5 + 1e-6 for r in refused)
    # the burst allowance is served in full, in order; only what comes after is refused
    refused_seqs = {r["seq"] for r in refused}
    assert not refused_seqs & set(range(3, 41)), sorted(refused_seqs)[:5]
    accepted = 200 - len(refused)
    assert 38 <= accepted <= 38 + 5 * elapsed + 1, (accepted, elapsed)
    # refused work was never logged nor queued
    assert await _count_prompts(obj) == accepted
    assert len(queued) == accepted and {q.seq for q in queued}.isdisjoint(refused_seqs)


async def test_default_limits_keep_a_200_click_burst_to_the_prompt_cap(queued):
    w = await sync_to_async(make_world)()
    comm, obj = await _socket(w.assigned_image.id)
    for seq in range(3, 203):
        await comm.send_json_to(_click(seq, obj))
    replies = await _replies(comm)
    await comm.disconnect()
    codes = {r["code"] for r in replies if r["type"] == "error"}
    assert "rate_limited" in codes, codes
    assert await _count_prompts(obj) <= 50 and len(queued) <= 50


async def test_an_object_at_the_prompt_cap_refuses_more(settings, queued):
    _limits(settings, MAX_PROMPTS_PER_OBJECT=3)
    w = await sync_to_async(make_world)()
    comm, obj = await _socket(w.assigned_image.id)
    for seq in range(3, 8):
        await comm.send_json_to(_click(seq, obj))
    refused = [r for r in await _replies(comm) if r["type"] == "error"]
    assert [(r["seq"], r["code"]) for r in refused] == [
        (6, "too_many_prompts"),
        (7, "too_many_prompts"),
    ]
    assert await _count_prompts(obj) == 3 and len(queued) == 3

    # a brush edit is not a prompt the method reads: it still goes in
    await comm.send_json_to(
        {
            "type": "edit",
            "seq": 8,
            "object_id": obj,
            "mode": "paint",
            "points": [[5, 5]],
            "width": 3,
        }
    )
    assert not [r for r in await _replies(comm) if r["type"] == "error"]
    # undo frees a place (the undone click is dropped when the next one is logged)
    await comm.send_json_to({"type": "undo", "seq": 9, "object_id": obj})
    await comm.send_json_to({"type": "undo", "seq": 10, "object_id": obj})  # the edit, then a click
    await comm.send_json_to(_click(11, obj))
    assert not [r for r in await _replies(comm) if r["type"] == "error"]
    await comm.disconnect()
    kinds = await sync_to_async(list)(
        Prompt.objects.filter(instance_id=obj).order_by("seq").values_list("kind", flat=True)
    )
    assert kinds == ["click", "click", "click"]

    # the HTTP API keeps the same cap
    api = APIClient()
    api.force_authenticate(w.users["annotator"])
    response = await sync_to_async(api.post)(
        f"/api/instances/{obj}/prompts/",
        {"kind": "click", "payload": {"x": 3, "y": 3}},
        format="json",
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_prompts", (
        response.json()
    )


async def test_an_over_long_scribble_is_refused(queued):
    w = await sync_to_async(make_world)()
    comm, obj = await _socket(w.assigned_image.id)
    stroke = [[float(i % 60), float(i % 40)] for i in range(2001)]
    await comm.send_json_to({"type": "scribble", "seq": 3, "object_id": obj, "points": stroke})
    await comm.send_json_to(
        {"type": "edit", "seq": 4, "object_id": obj, "mode": "paint", "points": stroke, "width": 4}
    )
    refused = [r for r in await _replies(comm) if r["type"] == "error"]
    assert [(r["seq"], r["code"]) for r in refused] == [(3, "bad_request"), (4, "bad_request")], (
        refused
    )
    assert "points" in refused[0]["message"]
    assert await _count_prompts(obj) == 0 and queued == []

    await comm.send_json_to(
        {"type": "scribble", "seq": 5, "object_id": obj, "points": stroke[:2000]}
    )
    assert not [r for r in await _replies(comm) if r["type"] == "error"]
    await comm.disconnect()
    assert await _count_prompts(obj) == 1 and len(queued) == 1


async def test_a_flood_of_unreadable_messages_is_rate_limited_before_it_is_parsed(
    settings, queued, monkeypatch
):
    """Invalid messages cost the server their parse (json + schema, on the shared event loop):
    they spend tokens like any message, one more per 4 KiB, and past the burst they are
    refused unread, with the seq they name. Before, a 160 KB message cost one token and took
    90 ms to parse: four sockets held /healthz at 3 s without ever being refused."""
    from annotation.labeling import consumers

    _limits(settings, SOCKET_RATE=0.01, SOCKET_BURST=40)  # no refill to speak of during the test
    w = await sync_to_async(make_world)()
    comm, _ = await _socket(w.assigned_image.id)  # seq 1 and 2 spent two tokens: 38 left
    parsed = []
    real_parse = consumers.parse
    monkeypatch.setattr(consumers, "parse", lambda text: parsed.append(1) or real_parse(text))
    junk = "x" * 60_000  # under the 64 KiB cap: 1 + 60 KB // 4 KiB = 15 tokens a message
    for seq in range(3, 23):  # valid JSON, invalid by the schema (no object_id, an unknown field)
        await comm.send_to(text_data=f'{{"type": "click", "seq": {seq}, "junk": "{junk}"}}')
    await comm.send_to(
        text_data='{"seq": 203, "pad": "' + "y" * 300_000 + '"}'
    )  # costs the whole burst
    replies = [await comm.receive_json_from(timeout=30) for _ in range(21)]
    await comm.disconnect()

    read = [r for r in replies if r["code"] == "bad_request"]
    refused = [r for r in replies if r["code"] == "rate_limited"]
    assert len(refused) + len(read) == len(replies), {r["code"] for r in replies}
    assert [r["seq"] for r in read] == [3, 4]  # 38 → 23 → 8 tokens: two were read
    assert len(parsed) == 2  # the refused ones were never parsed
    # the seq of a refused message is read without parsing it
    assert [r["seq"] for r in refused] == [*range(5, 23), 203]
    assert all(r["retry_after"] > 0 for r in refused)
    assert queued == []


async def test_a_socket_that_ignores_retry_after_is_closed(settings, queued):
    # refusals, like messages, refill: only a client that keeps sending past them is closed
    _limits(
        settings, SOCKET_RATE=1, SOCKET_BURST=5, SOCKET_REFUSALS_BURST=20, SOCKET_REFUSALS_RATE=0.01
    )
    w = await sync_to_async(make_world)()
    comm, _ = await _socket(w.assigned_image.id)
    for seq in range(3, 60):
        await comm.send_json_to({"type": "ping", "seq": seq})
    codes = []
    while True:
        output = await comm.receive_output(timeout=30)
        if output["type"] == "websocket.close":
            break
        codes.append(json.loads(output["text"]).get("code", "pong"))
    assert output["code"] == 1008, output
    assert codes[-20:] == ["rate_limited"] * 20 and len(codes) < 57, codes  # closed at once
