"""The role × message matrix of the annotation socket, walked in full, like the REST one in
``tests/annotation/projects/test_permissions.py`` (and with the same answers: one rule,
``annotation.labeling.permissions``, serves both).

Every client message type of ``protocol.schema.json`` × every role × a target in project A
(the project under test) or in project B (another tenant). ``outsider`` is B's owner: project
A is foreign to them, B their own. No worker answers (``queued`` records the hand-off, so a
worker of another test cannot answer late): a prompt that is allowed is logged and queued,
and shows as no error before the next ``pong`` plus a new Prompt row.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from annotation.datasets.models import Image
from annotation.datasets.services import dataset_create
from annotation.labeling.models import Instance, Prompt, Task
from annotation.labeling.services import instance_create, task_create
from annotation.modelstore.models import TrainedModel
from annotation.projects.services import label_create, project_create
from annotation.users.models import User
from tests.factories import add_images, box_mask, make_world
from tests.sockets import session_cookie, site_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ROLES = ("owner", "manager", "reviewer", "annotator", "outsider")
OK = "ok"


@dataclass
class Target:
    """What the messages of one column name: an image, its object and label, a task, a model."""

    image: Image
    instance: Instance
    label_id: int
    task: Task
    model_id: int


def _model(project) -> int:
    return TrainedModel.objects.create(
        project=project,
        method="dynamite",
        name="net",
        file="models/x.safetensors",
        state=TrainedModel.State.READY,
        origin=TrainedModel.Origin.TRAINED,
        is_default=True,
    ).id


def _tenants() -> dict[str, Target]:
    w = make_world()
    a = Target(w.assigned_image, w.instance, w.label.id, w.task, _model(w.project))
    owner_b = User.objects.create_user(username="owner_b", password="pw-12345678")
    project_b = project_create(name="Cats", owner=owner_b)
    label_b = label_create(project=project_b, name="cat", color="#00ff00")
    (image_b,) = add_images(dataset_create(project=project_b, name="set B"), 1, start_seed=300)
    task_b = task_create(
        project=project_b,
        dataset=image_b.dataset,
        name="tb",
        assignee_id=owner_b.id,
        image_ids=[image_b.id],
    )
    instance_b = instance_create(
        image=image_b, mask=box_mask(image_b, 1, 1, 6, 6), label_id=label_b.id
    )
    return {"A": a, "B": Target(image_b, instance_b, label_b.id, task_b, _model(project_b))}


def _stroke(t: Target) -> dict:
    return {"object_id": t.instance.id, "points": [[5, 5], [20, 10]]}


# message type, its body for a target, the reply type when allowed (None: a logged prompt, no
# reply), then the expected answer per role in ROLES order: for a target in A, in B.
E, F, N, B, U = OK, "forbidden", "not_found", "bad_request", "unavailable"
MATRIX = [
    ("open", lambda t: {"image_id": t.image.id}, "opened", (E, E, E, E, N), (N, N, N, N, E)),
    (
        "set_method",
        lambda t: {"method": "dynamite", "backbone": f"model-{t.model_id}"},
        "method",
        (E, E, E, E, B),
        (B, B, B, B, E),
    ),
    ("new_object", lambda t: {"label_id": t.label_id}, "object", (E, E, F, E, B), (B, B, F, B, E)),
    (
        "select_object",
        lambda t: {"object_id": t.instance.id},
        "selected",
        (E, E, E, E, N),
        (N, N, N, N, E),
    ),
    (
        "set_label",
        lambda t: {"object_id": t.instance.id, "label_id": t.label_id},
        "object",
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    (
        "click",
        lambda t: {"object_id": t.instance.id, "x": 10, "y": 12, "positive": True},
        None,
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    (
        "scribble",
        lambda t: {**_stroke(t), "width": 4, "positive": False},
        None,
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    (
        "extreme_points",
        lambda t: {"object_id": t.instance.id, "points": [[10, 2], [2, 10], [10, 20], [20, 10]]},
        None,
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    (
        "edit",
        lambda t: {**_stroke(t), "mode": "paint", "width": 3},
        None,
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    # a choice among the ranked masks of the object's prediction (the click above made one)
    (
        "candidate",
        lambda t: {"object_id": t.instance.id, "index": 1},
        None,
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
    # kinds no offered method declares (box, text): refused once the rights are checked
    (
        "box",
        lambda t: {"object_id": t.instance.id, "x0": 2, "y0": 2, "x1": 20, "y1": 20},
        None,
        (B, B, F, B, N),
        (N, N, N, N, B),
    ),
    (
        "text",
        lambda t: {"object_id": t.instance.id, "text": "the dog"},
        None,
        (B, B, F, B, N),
        (N, N, N, N, B),
    ),
    ("undo", lambda t: {"object_id": t.instance.id}, None, (E, E, F, E, N), (N, N, N, N, E)),
    ("redo", lambda t: {"object_id": t.instance.id}, None, (E, E, F, E, N), (N, N, N, N, E)),
    # Find all: no worker here has a text finder's checkpoint, so an allowed one is unavailable
    ("find_all", lambda t: {"label_id": t.label_id}, None, (U, U, F, U, N), (N, N, F, N, U)),
    ("save", lambda t: {}, "saved", (E, E, E, E, E), (E, E, E, E, E)),
    ("submit", lambda t: {"task_id": t.task.id}, "submitted", (E, E, F, E, N), (N, N, N, N, E)),
    ("ping", lambda t: {}, "pong", (E, E, E, E, E), (E, E, E, E, E)),
    (
        "delete_object",
        lambda t: {"object_id": t.instance.id},
        "object_deleted",
        (E, E, F, E, N),
        (N, N, N, N, E),
    ),
]


def test_the_matrix_names_every_client_message_type():
    import json

    from annotation.labeling.protocol import SCHEMA_PATH

    types = json.loads(SCHEMA_PATH.read_text())["properties"]["type"]["enum"]
    assert sorted(row[0] for row in MATRIX) == sorted(types)


async def _socket(username: str, home: Image):
    """A socket of ``username`` with an image of their own project open."""
    from config.asgi import application

    headers = site_headers(await sync_to_async(session_cookie)(username))
    comm = WebsocketCommunicator(application, "/ws/annotate/", headers=headers)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": home.id})
    assert (await comm.receive_json_from(timeout=10))["type"] == "opened"
    return comm


def _prompts(instance_id: int) -> int:
    return Prompt.objects.filter(instance_id=instance_id).count()


async def _answer(comm, kind: str, body: dict, seq: int, reply: str | None) -> str:
    """What the socket answered: OK (the expected reply, or for a prompt no error before the
    next pong), else the error's code."""
    await comm.send_json_to({"type": kind, "seq": seq, **body})
    if reply is None:
        await comm.send_json_to({"type": "ping", "seq": seq + 1})
    message = await comm.receive_json_from(timeout=10)
    if message["type"] == "error":
        if reply is None:
            assert (await comm.receive_json_from(timeout=10))["type"] == "pong"
        assert message["seq"] == seq, message
        return message["code"]
    assert message["type"] == (reply or "pong") and message["seq"] == seq + (reply is None), message
    return OK


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("column", ("A", "B"))
async def test_socket_role_matrix(role: str, column: str, queued):
    targets = await sync_to_async(_tenants)()
    username, home = (
        ("owner_b", targets["B"].image) if role == "outsider" else (role, targets["A"].image)
    )
    target = targets[column]
    foreign = (role == "outsider") == (column == "A")
    before = await sync_to_async(Instance.objects.values("version", "label_id").get)(
        pk=target.instance.id
    )
    comm = await _socket(username, home)
    got, want, seq = {}, {}, 10
    for kind, body, reply, in_a, in_b in MATRIX:
        prompts = await sync_to_async(_prompts)(target.instance.id)
        queued.clear()
        got[kind] = await _answer(comm, kind, body(target), seq, reply)
        want[kind] = (in_a if column == "A" else in_b)[ROLES.index(role)]
        if kind in ("click", "scribble", "extreme_points", "edit", "candidate"):
            logged = await sync_to_async(_prompts)(target.instance.id) - prompts
            assert logged == (1 if got[kind] == OK else 0), (kind, logged)
            assert bool(queued) == (got[kind] == OK), (kind, queued)
        seq += 2
    await comm.disconnect()
    assert got == want
    if foreign:  # nothing of the other tenant changed
        row = Instance.objects.filter(pk=target.instance.id).values("version", "label_id")
        after = await sync_to_async(row.first)()
        assert after == before and await sync_to_async(_prompts)(target.instance.id) == 0
        assert (await sync_to_async(Task.objects.get)(pk=target.task.id)).state == target.task.state


async def test_a_member_removed_while_the_socket_is_open_gets_not_found_for_save(queued):
    """The role is read at each message, not at open: ``save`` (which any role may send)
    tells a former member nothing about the image, as the write messages do not either."""
    from annotation.projects.models import Membership

    targets = await sync_to_async(_tenants)()
    comm = await _socket("annotator", targets["A"].image)
    assert await _answer(comm, "save", {}, 10, "saved") == OK
    await sync_to_async(Membership.objects.filter(user__username="annotator").delete)()
    assert await _answer(comm, "save", {}, 12, "saved") == "not_found"
    click = {"object_id": targets["A"].instance.id, "x": 10, "y": 12, "positive": True}
    assert await _answer(comm, "click", click, 14, None) == "not_found"
    await comm.disconnect()
