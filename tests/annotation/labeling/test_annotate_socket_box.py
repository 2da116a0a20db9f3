"""``box`` messages on the annotation socket: a box outside the image, inverted, flat or
malformed is refused with a message that says why, and nothing is logged; a method that reads
no boxes refuses them too. (A valid box answered by a real worker: test_toy_method.py and
tests/browser/test_annotate_box.py.)"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from annotation.labeling.models import Prompt
from tests.annotation.labeling.test_annotate_socket import _connect, _until, _world_with_square
from tests.annotation.segmentation.interactive import toy_box_method

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


async def test_bad_boxes_are_refused_and_nothing_is_logged(settings):
    settings.MASKWRIGHT = {
        **settings.MASKWRIGHT,
        "METHOD_PLUGINS": [toy_box_method.__name__],
    }
    _w, image = await sync_to_async(_world_with_square)()  # 160×120
    comm, connected, _ = await _connect("annotator")
    assert connected
    await comm.send_json_to(
        {"type": "open", "seq": 1, "image_id": image.id, "method": toy_box_method.NAME}
    )
    opened = await _until(comm, "opened")
    assert opened["method"] == toy_box_method.NAME, opened
    await comm.send_json_to({"type": "new_object", "seq": 2})
    oid = (await _until(comm, "object"))["object"]["id"]
    before = await sync_to_async(Prompt.objects.count)()

    def box(seq: int, **corners: float) -> dict:
        return {"type": "box", "seq": seq, "object_id": oid, **corners}

    refused = [
        # (message, what the error says)
        (box(3, x0=10, y0=10, x1=160, y1=50), "(160, 50) is outside the 160×120 image"),
        (box(4, x0=10, y0=-1, x1=50, y1=50), "y0: -1 is less than the minimum of 0"),
        (box(5, x0=50, y0=10, x1=10, y1=50), "must be above and left of"),  # inverted
        (box(6, x0=10, y0=50, x1=50, y1=10), "must be above and left of"),
        (box(7, x0=10, y0=10, x1=10, y1=50), "must be above and left of"),  # no width
        (box(8, x0=10, y0=10, x1=50), "y1"),  # a corner short
        (box(9, x0=10, y0=10, x1=50, y1=50, positive=True), "positive"),  # no sign on a box
    ]
    for message, says in refused:
        await comm.send_json_to(message)
        reply = await comm.receive_json_from(timeout=10)
        assert reply["type"] == "error" and reply["seq"] == message["seq"], (message, reply)
        assert reply["code"] == "bad_request" and says in reply["message"], (message, reply)

    # a method that reads no boxes refuses even a good one
    await comm.send_json_to({"type": "set_method", "seq": 10, "method": "m2n2"})
    assert (await _until(comm, "method"))["method"] == "m2n2"
    await comm.send_json_to(box(11, x0=10, y0=10, x1=50, y1=50))
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply
    assert "takes no box prompts" in reply["message"], reply

    assert await sync_to_async(Prompt.objects.count)() == before
    await comm.send_json_to({"type": "ping", "seq": 12})
    assert (await comm.receive_json_from(timeout=10)) == {"type": "pong", "seq": 12}
    await comm.disconnect()
