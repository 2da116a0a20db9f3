"""Find all on the annotation socket: every instance of a label in the open image, found from the
label's name, becomes a pending pseudo label of that label.

End to end with a real interactive worker that has a tiny random SAM 3 as ``facebook/sam3`` on
its disk (Postgres, Redis, the consumer in process): the ``found`` answer carries the stored
objects with their masks, exactly what SAM 3's finder gives on the image; a second find of the
label stores nothing and counts the duplicates; another label re-uses the encoded image; a
find that fails on the worker answers an error with its seq. Without such a worker: the refusals
(no image open, malformed, a role that may not create masks, a label of another project, no
checkpoint anywhere, one find at a time per socket), with what ``opened`` says of Find all.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from annotation.common import rle
from annotation.datasets.storage import read_rgb
from annotation.labeling.models import Instance
from annotation.projects.services import label_create, project_create
from annotation.segmentation.interactive import checkpoints, dispatch, keys
from tests.annotation.labeling.test_annotate_socket import (
    _connect,
    _decode,
    _until,
    _world_with_square,
)
from tests.factories import add_images

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SAM3_WHY = (
    "no worker has the weights of facebook/sam3: put the checkpoint folder at "
    "$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3 on a worker"
)
FAKE_HOST = "find-fake@nowhere"  # a worker name no Celery worker listens as
GRABCUT = "opencv-grabcut"  # the method the page opens with: cheap, needs no weights


def _labels_and_foreign(w):
    """Label ``cat`` beside the world's ``bird``, and a label of another project."""
    cat = label_create(project=w.project, name="cat", color="#00ff00")
    elsewhere = project_create(name="Cars", owner=w.users["outsider"])
    return cat, label_create(project=elsewhere, name="car", color="#0000ff")


async def _open(username: str, image_id: int):
    comm, connected, _ = await _connect(username)
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image_id, "method": GRABCUT})
    opened = await _until(comm, "opened")
    assert opened["type"] == "opened", opened
    return comm, opened


async def _refused(comm, message: dict) -> dict:
    await comm.send_json_to(message)
    reply = await comm.receive_json_from(timeout=10)
    assert reply["type"] == "error" and reply["seq"] == message["seq"], (message, reply)
    return reply


def _find(seq: int, label_id) -> dict:
    return {"type": "find_all", "seq": seq, "label_id": label_id}


def _fake_worker(has_sam3: bool) -> str:
    """An alive interactive worker of Redis keys only (no process): its alive key and its
    checkpoint report, SAM 3's checkpoint found or missing."""
    entry = {"method": "sam3", "variant": "sam3", "model_id": "facebook/sam3"}
    report = {
        "device": "cpu",
        "weights_dir": "/models",
        "checked_at": time.time(),
        "found": {},
        "missing": {"sam3/sam3": {**entry, "folder": "/models/facebook--sam3"}},
    }
    if has_sam3:
        found = {**entry, "path": "/models/facebook--sam3", "bytes": 1, "device": "cpu"}
        report.update(found={"sam3/sam3": found}, missing={})
    checkpoints.publish(FAKE_HOST, report)
    client = keys.redis_client()
    client.set(keys.alive(FAKE_HOST), str(time.time()), ex=60)
    client.expire(keys.weights(FAKE_HOST), 60)
    return FAKE_HOST


@pytest.fixture
def fake_worker(monkeypatch):
    """``_fake_worker``, its keys deleted after the test. Prefetches are dropped: no process
    would take those queued for it."""
    monkeypatch.setattr(dispatch, "send_prefetch", lambda *args, **kwargs: None)
    yield _fake_worker
    keys.redis_client().delete(keys.alive(FAKE_HOST), keys.weights(FAKE_HOST))


async def test_refusals_say_why_and_store_nothing(fake_worker):
    from annotation.segmentation.interactive import methods

    await sync_to_async(fake_worker)(has_sam3=False)  # a worker is alive, without SAM 3
    finder = await sync_to_async(methods.text_finding)()
    assert not finder["available"], "a worker has SAM 3's checkpoint"
    w, image = await sync_to_async(_world_with_square)()
    cat, foreign = await sync_to_async(_labels_and_foreign)(w)
    before = await sync_to_async(Instance.objects.count)()

    comm, connected, _ = await _connect("annotator")
    assert connected
    early = await _refused(comm, _find(1, w.label.id))
    assert (early["code"], early["message"]) == ("bad_request", "open an image first")
    await comm.send_json_to({"type": "open", "seq": 2, "image_id": image.id, "method": GRABCUT})
    opened = await _until(comm, "opened")
    assert opened["find_all"] == {"available": False, "method": None, "why": SAM3_WHY}

    for seq, bad, says in (
        (3, {"label_id": "1"}, "label_id: '1' is not of type 'integer'"),
        (4, {"label_id": 0}, "label_id: 0 is less than the minimum of 1"),
        (5, {}, "'label_id' is a required property"),
        (6, {"label_id": cat.id, "text": "cat"}, "('text' was unexpected)"),
    ):
        reply = await _refused(comm, {"type": "find_all", "seq": seq, **bad})
        assert reply["code"] == "bad_request" and says in reply["message"], reply
    reply = await _refused(comm, _find(7, foreign.id))
    assert reply["code"] == "not_found"
    assert reply["message"] == f"label {foreign.id} is not a label of this project"
    reply = await _refused(comm, _find(8, cat.id))
    assert reply["code"] == "unavailable" and SAM3_WHY in reply["message"], reply
    await comm.disconnect()

    # a reviewer opens the image but creates no masks: refused before anything else
    comm, opened = await _open("reviewer", image.id)
    assert opened["find_all"]["available"] is False
    reply = await _refused(comm, _find(2, cat.id))
    assert (reply["code"], reply["message"]) == ("forbidden", "a reviewer cannot create masks")
    await comm.disconnect()
    assert await sync_to_async(Instance.objects.count)() == before


async def test_one_find_at_a_time_per_socket_and_what_goes_to_the_worker(
    fake_worker, settings, monkeypatch
):
    from annotation.labeling.finding import FindRequest, failed

    await sync_to_async(fake_worker)(has_sam3=True)
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "FIND_ALL_THRESHOLD": 0.25, "FIND_ALL_MAX": 7}
    sent: list[tuple[dict, str | None]] = []
    monkeypatch.setattr(
        dispatch, "send_find", lambda message, worker: sent.append((message, worker))
    )
    w, image = await sync_to_async(_world_with_square)()
    cat, _ = await sync_to_async(_labels_and_foreign)(w)
    comm, opened = await _open("annotator", image.id)
    assert opened["find_all"] == {"available": True, "method": "sam3", "why": None}

    await comm.send_json_to(_find(2, w.label.id))
    await comm.send_json_to({"type": "ping", "seq": 3})
    assert await comm.receive_json_from(timeout=10) == {"type": "pong", "seq": 3}  # no reply yet
    ((message, worker),) = sent
    assert worker == FAKE_HOST  # the one worker that has the checkpoint
    annotator = w.users["annotator"]
    assert {k: v for k, v in message.items() if k not in ("reply_channel", "received_at")} == {
        "image_id": image.id,
        "project_id": w.project.id,
        "label_id": w.label.id,
        "text": "bird",
        "method": "sam3",
        "backbone": "sam3",
        "model_name": "facebook/sam3",
        "threshold": 0.25,
        "max_instances": 7,
        "user_id": annotator.id,
        "seq": 2,
        "size_hw": [120, 160],
    }
    busy = await _refused(comm, _find(4, cat.id))
    assert busy["code"] == "busy" and "seq 2" in busy["message"], busy
    assert len(sent) == 1

    # one find per socket: another socket of the same annotator may find meanwhile
    other, _ = await _open("annotator", image.id)
    await other.send_json_to(_find(2, cat.id))
    await other.send_json_to({"type": "ping", "seq": 3})
    assert (await other.receive_json_from(timeout=10))["type"] == "pong" and len(sent) == 2
    await other.disconnect()

    # the worker's failure answers the seq, and the socket may find again
    await sync_to_async(failed)(FindRequest.from_message(message), "sam3 could not find: boom")
    reply = await comm.receive_json_from(timeout=10)
    assert reply == {
        "type": "error",
        "seq": 2,
        "code": "server_error",
        "message": "sam3 could not find: boom",
    }
    await comm.send_json_to(_find(5, cat.id))
    await comm.send_json_to({"type": "ping", "seq": 6})
    assert (await comm.receive_json_from(timeout=10))["type"] == "pong" and len(sent) == 3
    await comm.disconnect()


async def test_duplicates_of_the_label_are_skipped_those_of_others_are_not():
    """``found_save`` alone: a found mask with IoU > 0.9 with an object of its label (one stored
    before, or one this find stored just now) is skipped and counted; an object of another
    label is no duplicate; the socket's channel hears what was stored, after commit."""
    from channels.layers import get_channel_layer

    from annotation.labeling.finding import FindRequest, found_save
    from annotation.labeling.services import instance_create

    w, image = await sync_to_async(_world_with_square)()
    cat, _ = await sync_to_async(_labels_and_foreign)(w)

    def box(x0: int, y0: int, x1: int, y1: int) -> dict:
        mask = np.zeros((120, 160), dtype=bool)
        mask[y0:y1, x0:x1] = True
        return rle.encode(mask)

    # a bird 50..110 × 30..90 (3600 px) stored already, a cat elsewhere
    await sync_to_async(instance_create)(
        image=image, mask=box(50, 30, 110, 90), label_id=w.label.id
    )
    await sync_to_async(instance_create)(image=image, mask=box(0, 0, 40, 40), label_id=cat.id)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    request = FindRequest(
        image_id=image.id,
        project_id=w.project.id,
        label_id=w.label.id,
        text="bird",
        method="sam3",
        backbone="sam3",
        model_name="facebook/sam3",
        threshold=0.0,
        max_instances=50,
        reply_channel=channel,
        user_id=w.users["annotator"].id,
        seq=9,
        received_at=time.time(),
        size_hw=(120, 160),
    )
    found = [
        (box(51, 30, 110, 90), 0.9),  # IoU 59/60 with the stored bird: a duplicate
        (box(0, 0, 40, 40), 0.8),  # the cat's place: a bird there is new
        (box(0, 0, 40, 39), 0.7),  # IoU 39/40 with the bird just stored: a duplicate
        (box(120, 80, 160, 120), 0.6),  # new
        (box(50, 30, 110, 80), 0.5),  # IoU 50/60 with the stored bird: kept
    ]
    counts = await sync_to_async(found_save)(
        request, [m for m, _ in found], [s for _, s in found], model_s=0.25, worker="w@h"
    )
    assert counts == {"count": 3, "skipped": 2}
    event = await layer.receive(channel)
    assert {k: v for k, v in event.items() if k != "objects"} == {
        "type": "annotate.found",
        "seq": 9,
        "image_id": image.id,
        "label_id": w.label.id,
        "text": "bird",
        "count": 3,
        "skipped": 2,
        "model_ms": 250.0,
        "worker": "w@h",
    }
    assert [o["box"] for o in event["objects"]] == [
        [0, 0, 40, 40],
        [120, 80, 40, 40],
        [50, 30, 60, 50],
    ]
    stored = await sync_to_async(_stored)([o["id"] for o in event["objects"]])
    assert [i.score for i in stored] == [0.8, 0.6, 0.5]
    assert all(i.pseudo and i.review_state == "pending" and i.source == "sam3" for i in stored)


# -- with a real worker ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """A weights folder where ``facebook/sam3`` resolves to a tiny random SAM 3."""
    from inference.methods.sam.text_tiny import save_tiny_sam3

    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


@pytest.fixture(scope="module")
def sam3_worker(django_db_setup, django_db_blocker, tmp_path_factory, weights_root):
    """(hostname, log file) of a real interactive worker with the tiny SAM 3 on its disk, once
    it reports the checkpoint; stopped by pid after the module."""
    from annotation.cli.services import stop_processes
    from annotation.segmentation.interactive import methods
    from tests.conftest import start_worker

    log_path = tmp_path_factory.mktemp("find-worker") / "worker.log"
    name = f"find-{os.getpid()}"
    hostname = f"{name}@{socket.gethostname()}"
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock():
        patch.setenv("MASKWRIGHT_WEIGHTS_DIR", str(weights_root))
        patch.setenv("MASKWRIGHT_INTERACTIVE_WARMUP", "0")
        proc = start_worker(name, log_path, queues="interactive")
    try:
        deadline = time.monotonic() + 60
        while methods.text_finding()["available"] is not True:
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        assert dispatch.is_alive(hostname)
        yield hostname, log_path
    finally:
        stop_processes([proc])


def _expected(weights_root, image, text: str, taken: list[dict]) -> tuple[list[np.ndarray], int]:
    """What Find all should store for ``text`` on ``image``: SAM 3's finder's non-empty masks
    (threshold 0, best first), less those with IoU > 0.9 with ``taken`` (stored masks of the
    label) or with one kept before them; (kept masks, skipped count)."""
    from inference.methods.sam.text import TextFinder

    finder = TextFinder.from_folder(weights_root / "facebook--sam3")
    finder.set_image(read_rgb(image.file))
    kept, skipped, taken = [], 0, list(taken)
    for result in finder.find(text, threshold=0.0, max_instances=50):
        if not result.mask.any():
            continue
        stored = rle.encode(result.mask)
        if taken and rle.ious([stored], taken).max() > 0.9:
            skipped += 1
            continue
        kept.append(result.mask)
        taken.append(stored)
    return kept, skipped


def _stored(ids: list[int]) -> list[Instance]:
    rows = {i.id: i for i in Instance.objects.filter(pk__in=ids)}
    return [rows[i] for i in ids]


async def _found(comm, seq: int) -> dict:
    reply = await _until(comm, "found")
    assert reply["type"] == "found" and reply["seq"] == seq, reply
    assert set(reply) == {
        "type", "seq", "label_id", "text", "objects", "count", "skipped", "model_ms", "worker"
    }  # fmt: skip
    assert reply["count"] == len(reply["objects"]) and reply["model_ms"] > 0
    return reply


async def test_found_instances_are_pending_pseudo_labels_and_duplicates_are_skipped(
    sam3_worker, weights_root, settings
):
    hostname, log_path = sam3_worker
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "FIND_ALL_THRESHOLD": 0.0, "FIND_ALL_MAX": 50}
    w, image = await sync_to_async(_world_with_square)()
    cat, _ = await sync_to_async(_labels_and_foreign)(w)
    comm, opened = await _open("annotator", image.id)
    assert opened["find_all"] == {"available": True, "method": "sam3", "why": None}

    await comm.send_json_to(_find(2, w.label.id))
    first = await _found(comm, 2)
    assert (first["label_id"], first["text"], first["worker"]) == (w.label.id, "bird", hostname)
    masks, skipped = await sync_to_async(_expected)(weights_root, image, "bird", [])
    assert first["count"] == len(masks) > 0 and first["skipped"] == skipped
    for obj, mask in zip(first["objects"], masks, strict=True):
        assert np.array_equal(_decode(obj), mask)
        assert (obj["label_id"], obj["source"], obj["pseudo"], obj["review_state"]) == (
            w.label.id,
            "sam3",
            True,
            "pending",
        )
        assert obj["prompts"] == [] and not obj["can_undo"] and obj["candidates"] is None
    stored = await sync_to_async(_stored)([o["id"] for o in first["objects"]])
    for instance, obj in zip(stored, first["objects"], strict=True):
        assert np.array_equal(rle.decode(instance.mask), _decode(obj))
        assert (instance.model_name, instance.model_version) == ("facebook/sam3", "find-all")
        assert instance.author_id == w.users["annotator"].id and 0 <= instance.score <= 1
        assert instance.version == obj["version"] and instance.image_id == image.id
    scores = [i.score for i in stored]
    assert scores == sorted(scores, reverse=True)  # best first

    # the same label again: every mask found is one of those objects
    await comm.send_json_to(_find(3, w.label.id))
    again = await _found(comm, 3)
    assert again["count"] == 0 and again["objects"] == []
    assert again["skipped"] == first["count"] + first["skipped"]
    assert await sync_to_async(Instance.objects.filter(image=image).count)() == first["count"]

    # another label: its own objects (bird's do not count), on the image encoded already
    await comm.send_json_to(_find(4, cat.id))
    cats = await _found(comm, 4)
    masks, skipped = await sync_to_async(_expected)(weights_root, image, "cat", [])
    assert cats["count"] == len(masks) > 0 and cats["skipped"] == skipped
    assert all(o["label_id"] == cat.id for o in cats["objects"])
    assert all(np.array_equal(_decode(o), m) for o, m in zip(cats["objects"], masks, strict=True))
    encoded = f"find all: image {image.id} encoded for sam3/sam3"
    assert log_path.read_text().count(encoded) == 1  # three finds, one encoding

    # reopened, they are objects of the image like any other (the canvas's proposals)
    await comm.disconnect()
    comm, reopened = await _open("annotator", image.id)
    ids = {o["id"] for o in first["objects"] + cats["objects"]}
    assert ids <= {o["id"] for o in reopened["objects"] if o["pseudo"]}
    await comm.disconnect()


async def test_a_find_that_fails_on_the_worker_answers_its_seq(sam3_worker, settings):
    from django.core.files.storage import default_storage

    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "FIND_ALL_THRESHOLD": 0.0}
    w, _image = await sync_to_async(_world_with_square)()
    (broken,) = await sync_to_async(add_images)(w.dataset, 1, 77)
    await sync_to_async(default_storage.delete)(broken.file)  # the worker cannot read it
    comm, _ = await _open("owner", broken.id)
    for seq in (2, 3):  # answered, so not busy: the second find is tried (and fails) too
        await comm.send_json_to(_find(seq, w.label.id))
        reply = await _until(comm, "found")
        assert reply["type"] == "error" and reply["seq"] == seq, reply
        assert reply["code"] == "server_error"
        assert reply["message"].startswith("sam3 could not find 'bird': "), reply
    assert not await sync_to_async(Instance.objects.filter(image=broken).exists)()
    await comm.disconnect()
