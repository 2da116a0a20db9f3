"""Ranked mask candidates: a logged ``candidate`` prompt picks one of the method's alternatives
for the object's newest prediction, on every replay of the log.

The toy method (``toy_method``: disks of 5, 10 and 15 px around a click, scored 0.93, 0.81,
0.52) answers through the real compute step, on a real image and prompt log; a fresh worker
state replays the same log to the same mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from annotation.common.exceptions import ApplicationError
from annotation.labeling import saves
from annotation.labeling.models import Prompt
from annotation.labeling.services import instance_create, prompt_append, prompt_undo
from annotation.segmentation.interactive import worker
from annotation.segmentation.interactive.compute import choice_of, choose, compute
from annotation.segmentation.interactive.methods import MAX_CANDIDATES
from annotation.segmentation.interactive.request import MaskRequest
from tests.annotation.labeling.test_annotate_socket import _world_with_square
from tests.annotation.segmentation.interactive import toy_method

SCORES = list(toy_method.SCORES)


def _disk(x: int, y: int, radius: int, hw=(120, 160)) -> np.ndarray:
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def test_choose_clamps_and_reads_a_result_without_candidates_as_its_only_one():
    from inference import MaskResult

    masks = [np.eye(4, dtype=bool), np.ones((4, 4), dtype=bool)]
    ranked = MaskResult(
        mask=masks[0],
        score=0.9,
        candidates=[MaskResult(masks[0], 0.91234), MaskResult(masks[1], None)],
    )
    mask, info = choose(ranked, 7)
    assert (mask == masks[1]).all() and info == {"count": 2, "index": 1, "scores": [0.912, None]}
    mask, info = choose(MaskResult(mask=masks[1]), 3)
    assert mask.all() and info == {"count": 1, "index": 0, "scores": [None]}
    many = MaskResult(masks[0], candidates=[MaskResult(masks[0], 0.1)] * (MAX_CANDIDATES + 4))
    assert choose(many, 0)[1]["count"] == MAX_CANDIDATES


def test_a_choice_lasts_until_the_objects_next_method_prompt():
    click = {"kind": "click", "payload": {}}
    pick = {"kind": "candidate", "payload": {"index": 2}}
    edit = {"kind": "edit", "payload": {}}
    assert choice_of([click]) == 0
    assert choice_of([click, pick, edit]) == 2  # a brush stroke paints on the chosen mask
    assert choice_of([click, pick, click]) == 0
    assert choice_of([{"kind": "base", "payload": {}}, click, pick]) == 2


@pytest.fixture
def toy(settings, monkeypatch):
    """The toy plugin registered here, and an empty worker state (no cached image)."""
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "METHOD_PLUGINS": [toy_method.__name__]}
    monkeypatch.setattr(worker, "_state", worker._WorkerState())


def _fresh_worker(monkeypatch) -> None:
    """Another worker: nothing of the image cached, the log is all it has."""
    monkeypatch.setattr(worker, "_state", worker._WorkerState())


def _answer(request: MaskRequest):
    objects = saves.objects_to_compute(request)
    computed = compute(request, objects)
    return computed.masks[request.instance_id], computed.candidates[request.instance_id]


@pytest.mark.django_db
def test_choice_applied_reset_by_a_click_restored_by_undo_and_replayed(toy, monkeypatch):
    w, image = _world_with_square()
    empty = {"size": [image.height, image.width], "counts": [image.height * image.width]}
    instance = instance_create(image=image, mask=empty, author=w.users["annotator"])
    request = MaskRequest(
        image_id=image.id,
        project_id=w.project.id,
        instance_id=instance.id,
        method=toy_method.NAME,
        backbone="none",
        rev=1,
        reply_channel="test",
        user_id=w.users["annotator"].id,
        seq=1,
        received_at=0.0,
        size_hw=(image.height, image.width),
    )

    def log(kind: str, **payload) -> Prompt:
        return prompt_append(instance=instance, kind=kind, payload=payload, method=toy_method.NAME)

    with pytest.raises(ApplicationError, match="no prediction to choose"):
        log("candidate", index=1)  # nothing predicted yet
    log("click", x=80, y=60, positive=True)
    mask, info = _answer(request)
    assert info == {"count": 3, "index": 0, "scores": SCORES}
    assert (mask == _disk(80, 60, 5)).all()

    log("candidate", index=1)
    mask, info = _answer(request)
    assert info == {"count": 3, "index": 1, "scores": SCORES}
    assert (mask == _disk(80, 60, 10)).all()

    _fresh_worker(monkeypatch)  # the holder died: another worker replays the log
    again, info_again = _answer(request)
    assert (again == mask).all() and info_again == info

    log("click", x=20, y=20, positive=True)  # a new prediction starts from the best mask
    mask, info = _answer(request)
    assert info["index"] == 0 and (mask == (_disk(80, 60, 5) | _disk(20, 20, 5))).all()

    prompt_undo(instance=instance)  # back to the prompt list the choice was made on
    mask, info = _answer(request)
    assert info["index"] == 1 and (mask == _disk(80, 60, 10)).all()

    log("candidate", index=MAX_CANDIDATES - 1)  # past the three it has: its last one
    mask, info = _answer(request)
    assert info["index"] == 2 and (mask == _disk(80, 60, 15)).all()

    for bad in (MAX_CANDIDATES, -1, True, 1.0, "1", None):
        with pytest.raises(ApplicationError, match="'index' must be an integer from 0 to 7"):
            log("candidate", index=bad)
    assert Prompt.objects.filter(instance=instance, kind="candidate").count() == 2
