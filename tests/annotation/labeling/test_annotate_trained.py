"""A project's trained models on the annotation socket: DynaMITe (every object at once, masks
disjoint) and EXITS (four extreme points → a mask), loaded by a real worker from the model store.
The networks are tiny and random: these tests pin the wiring, not the quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from annotation.labeling.models import Instance, Prompt
from annotation.modelstore.services import model_register_trained, model_set_default
from tests.annotation.labeling.test_annotate_socket import (
    _connect,
    _decode,
    _masks_until_final,
    _until,
    _world_with_square,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _register(w, method: str, path: Path):
    model = model_register_trained(
        project_id=w.project.id,
        method=method,
        name=f"tiny {method}",
        source=path,
        config={},
        metrics={},
        job_id=None,
        user=w.users["owner"],
    )
    return model_set_default(model=model)


def _tiny_dynamite(w, folder: Path):
    from inference.methods.dynamite.checkpoint import save_model
    from inference.methods.dynamite.model import DynaMITe, DynamiteConfig

    path = folder / "dynamite.safetensors"
    save_model(DynaMITe(DynamiteConfig.tiny()), path)
    return _register(w, "dynamite", path)


def _tiny_exits(w, folder: Path):
    from inference.methods.exits import build_generator, save_generator

    path = folder / "generator.safetensors"
    save_generator(
        build_generator("tiny-conv", pretrained=False), path, crop_size=64, mask_threshold=0.5
    )
    return _register(w, "exits", path)


async def test_dynamite_answers_for_every_clicked_object_with_disjoint_masks(
    celery_worker_proc, tmp_path
):
    w, image = await sync_to_async(_world_with_square)()
    model = await sync_to_async(_tiny_dynamite)(w, tmp_path)
    comm, _, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "method": "dynamite"})
    opened = await _until(comm, "opened")
    assert opened["method"] == "dynamite" and opened["backbone"] == f"model-{model.id}", opened
    offered = next(m for m in opened["methods"] if m["name"] == "dynamite")
    assert offered["multi_object"] and offered["model_id"] == model.id
    ids = []
    for seq in (2, 3):
        await comm.send_json_to({"type": "new_object", "seq": seq})
        ids.append((await _until(comm, "object"))["object"]["id"])
    await comm.send_json_to(
        {"type": "click", "seq": 4, "object_id": ids[0], "x": 80, "y": 60, "positive": True}
    )
    first = await _until(comm, "mask")
    assert first["type"] == "mask" and first["object_id"] == ids[0], first
    await comm.send_json_to(
        {"type": "click", "seq": 5, "object_id": ids[1], "x": 20, "y": 100, "positive": True}
    )
    got = await _masks_until_final(comm, 5)
    masks = {k: got.get(k, _decode(first) if k == ids[0] else None) for k in ids}
    assert masks[ids[1]] is not None
    assert not (masks[ids[0]] & masks[ids[1]]).any()
    stored = await sync_to_async(list)(Instance.objects.filter(pk__in=ids).order_by("id"))
    # a random network may leave an object empty: an unchanged (empty) mask is not re-saved
    assert all(i.source == "dynamite" or i.area == 0 for i in stored), [
        (i.source, i.area) for i in stored
    ]
    logged = await sync_to_async(list)(
        Prompt.objects.filter(instance_id__in=ids).values_list("method", flat=True)
    )
    assert logged == ["dynamite", "dynamite"]
    await comm.disconnect()


async def test_exits_turns_four_extreme_points_into_a_mask(celery_worker_proc, tmp_path):
    w, image = await sync_to_async(_world_with_square)()
    model = await sync_to_async(_tiny_exits)(w, tmp_path)
    comm, _, _ = await _connect("annotator")
    await comm.send_json_to({"type": "open", "seq": 1, "image_id": image.id, "method": "exits"})
    opened = await _until(comm, "opened")
    assert opened["method"] == "exits" and opened["backbone"] == f"model-{model.id}", opened
    await comm.send_json_to({"type": "new_object", "seq": 2})
    oid = (await _until(comm, "object"))["object"]["id"]
    points = [[80, 30], [50, 60], [80, 89], [109, 60]]  # top, left, bottom, right of the square
    await comm.send_json_to(
        {"type": "extreme_points", "seq": 3, "object_id": oid, "points": points}
    )
    reply = await _until(comm, "mask")
    assert reply["type"] == "mask" and reply["object_id"] == oid, reply
    mask = _decode(reply)
    assert all(mask[y, x] for x, y in points)  # the clicked extremes are on the object
    ys, xs = np.nonzero(mask)
    assert (
        xs.min() >= 50 and xs.max() <= 109 and ys.min() >= 30 and ys.max() <= 89
    )  # inside the box
    await comm.disconnect()
