"""Cooperative interruption: a prefetch stops at its next checkpoint once told to, and nothing
outside the context (another thread, code after it) ever stops."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from inference import Click, build_predictor
from inference.interrupt import Interrupted, checkpoint, interruptible
from inference.methods.m2n2.markov import matrix_ipf


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(20, 60, size=(96, 128, 3), dtype=np.uint8)
    img[24:72, 32:96] += 150
    return img


def test_checkpoint_is_a_no_op_outside_the_context():
    checkpoint()
    with interruptible(lambda: False):
        checkpoint()
        torch.nn.Linear(2, 2)(torch.zeros(1, 2))
    checkpoint()


def test_a_module_forward_stops_and_the_hook_goes_with_the_context():
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(Interrupted), interruptible(lambda: True):
        layer(torch.zeros(1, 2))
    layer(torch.zeros(1, 2))  # the global hook was removed on the way out
    checkpoint()


def test_the_stop_test_is_throttled_and_its_answer_sticks():
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 1

    with interruptible(should_stop, every_s=3600):
        for _ in range(1000):
            checkpoint()
    assert len(asked) == 1  # once per every_s, not once per checkpoint
    with pytest.raises(Interrupted), interruptible(should_stop, every_s=0):
        for _ in range(3):
            checkpoint()
    answers = iter([True, False, False])  # says stop once, then takes it back
    with interruptible(lambda: next(answers), every_s=0):
        for _ in range(3):  # a stop stays a stop: every checkpoint after it raises
            with pytest.raises(Interrupted):
                checkpoint()


def test_another_threads_torch_work_never_stops():
    layer = torch.nn.Linear(2, 2)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            for _ in range(50):
                layer(torch.zeros(1, 2))
        except BaseException as exc:  # noqa: BLE001 - the assertion reports it
            errors.append(exc)

    with interruptible(lambda: True):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors == []


def test_the_sinkhorn_steps_stop():
    matrix = torch.rand(64, 64)
    calls: list[int] = []
    with pytest.raises(Interrupted), interruptible(lambda: len(calls) > 3 or calls.append(1), 0):
        matrix_ipf(matrix, 200)
    assert len(calls) == 4  # the fifth checkpoint (step 40) stopped it


@pytest.mark.parametrize(
    ("method", "backbone"), [("m2n2", "tiny-effnet"), ("salt", "tiny-effnet"), ("dynamite", "tiny")]
)
@pytest.mark.filterwarnings("ignore:dynamite. no checkpoint")
def test_a_stopped_set_image_leaves_a_predictor_that_works(method, backbone):
    predictor = build_predictor(method, backbone=backbone)
    checks: list[int] = []
    with pytest.raises(Interrupted), interruptible(lambda: len(checks) > 2 or checks.append(1), 0):
        predictor.set_image(_image())
    predictor.set_image(_image())
    click = Click(x=64, y=48, positive=True, object_id=1)
    mask = predictor.predict_objects([click])[1].mask
    assert mask.shape == (96, 128) and mask.dtype == bool
