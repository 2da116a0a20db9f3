"""The multi-instance (MIST) loop: strategies, budget, metrics and the per-object adapter."""

from __future__ import annotations

import random

import numpy as np
import pytest

from inference import Click, MaskResult, Predictor
from inference.evaluation.datasets import Sample
from inference.evaluation.loop import evaluate_multi_dataset, evaluate_multi_sample, mist_rng
from inference.evaluation.metrics import mist_summary
from inference.evaluation.multi_instance import (
    MultiInstancePredictor,
    PerObjectAdapter,
    as_multi_instance,
    prompt_for,
)
from inference.evaluation.strategies import ObjectChooser

SIDE = 30  # 900-pixel objects: every one-decimal IoU is exact


def three_objects(name="img") -> Sample:
    labels = np.zeros((SIDE + 10, 3 * SIDE + 40), dtype=np.int32)
    for k in range(3):
        left = 10 + k * (SIDE + 10)
        labels[5 : 5 + SIDE, left : left + SIDE] = k + 1
    return Sample(name, np.zeros((*labels.shape, 3), dtype=np.uint8), labels, None)


class ScriptedMulti:
    """Object o's IoU after it has received c clicks is ``scripts[o][c - 1]`` (the last value
    holds): it predicts that fraction of o's pixels, in raster order."""

    def __init__(self, scripts: dict[int, list[float]], gt: np.ndarray) -> None:
        self.scripts, self.gt = scripts, gt

    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict_objects(self, clicks):
        out = {}
        for o, script in self.scripts.items():
            count = sum(c.object_id == o for c in clicks)
            fraction = script[min(count, len(script)) - 1] if count else 0.0
            pixels = np.flatnonzero(self.gt == o)
            mask = np.zeros(self.shape, dtype=bool)
            mask.flat[pixels[: round(fraction * len(pixels))]] = True
            out[o] = mask
        return out


def run(strategy, scripts, *, tau=10, beta=None, seed=0, sample=None, **kw):
    sample = sample or three_objects()
    predictor = ScriptedMulti(scripts, sample.gt)
    return evaluate_multi_sample(
        predictor, sample, strategy=strategy, tau=tau, beta=beta, rng=mist_rng(seed), **kw
    )


SCRIPTS = {1: [0.5, 0.6, 0.9], 2: [0.7, 0.8, 0.9], 3: [0.9]}


def test_scripted_predictor_is_a_multi_instance_predictor():
    assert isinstance(ScriptedMulti(SCRIPTS, three_objects().gt), MultiInstancePredictor)


@pytest.mark.parametrize(
    ("strategy", "beta", "aimed"),
    [
        ("best", None, [2, 2, 1, 1]),  # highest failing IoU first: 0.7 beats 0.5
        ("worst", None, [1, 1, 2, 2]),  # lowest first: 0.5, then 0.6 < 0.7
        ("wlb", 2, [1, 2, 2, 1]),  # worst until an object has 2 aimed clicks, then best
    ],
)
def test_strategies_pick_the_object_the_spec_says(strategy, beta, aimed):
    result = run(strategy, SCRIPTS, beta=beta)
    assert result.ious[0] == pytest.approx([0.5, 0.7, 0.9])
    assert result.aimed == aimed
    assert result.final_ious == pytest.approx([0.9, 0.9, 0.9]) and result.num_interactions == 3 + 4


def test_random_picks_uniformly_among_failing_objects_with_the_seeded_generator():
    for seed in range(5):
        result = run("random", SCRIPTS, seed=seed)
        # replay: DynaMITe shuffles one index list in place each step, takes the first failing
        rng, order, expected = random.Random(123456 + seed), [0, 1, 2], []
        for ious in result.ious[:-1]:
            rng.shuffle(order)
            expected.append(next(i for i in order if ious[i] < 0.85) + 1)
        assert result.aimed == expected and 3 not in result.aimed


def test_round_robin_keeps_an_object_for_a_streak_then_switches():
    slow = [0.1 * k for k in range(1, 9)] + [0.9]  # 9 clicks needed each
    result = run("round_robin", {1: slow, 2: slow, 3: [0.9]}, max_streak=3, exclusion_radius=0)
    runs = []
    for o in result.aimed:
        if runs and runs[-1][0] == o:
            runs[-1][1] += 1
        else:
            runs.append([o, 1])
    lengths = [n for _, n in runs]
    # the initial click counts towards the first streak, so the first run is one shorter
    assert lengths[0] == 2 and all(n == 3 for n in lengths[1:-1])
    assert result.final_ious == pytest.approx([0.9, 0.9, 0.9])


def test_round_robin_chooser_resets_when_every_failing_object_is_tired():
    chooser = ObjectChooser(
        "round_robin", 2, threshold=0.85, rng=random.Random(0), limit=10, max_streak=1
    )
    # both objects start with streak 1 = max: the counters reset and any failing one is allowed
    assert sorted(chooser.candidates([0.1, 0.2])) == [0, 1]


def test_max_dt_clicks_the_deepest_error_whoever_owns_it():
    sample = three_objects()

    class SpuriousBlob(ScriptedMulti):
        def predict_objects(self, clicks):
            out = {o: self.gt == o for o in (1, 2, 3)}
            out[1] = out[1].copy()
            out[1][:, -12:] = True  # a 12-px FP band at the right edge...
            if any(c.object_id == 0 for c in clicks):
                out[1][:, -12:] = False  # ...removed by a background click
            return out

    predictor = SpuriousBlob({}, sample.gt)
    result = evaluate_multi_sample(predictor, sample, strategy="max_dt", rng=mist_rng(0))
    last = result.clicks[-1]
    assert result.aimed == [0] and last.object_id == 0 and not last.positive
    assert result.final_ious == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("strategy", ["best", "worst", "random", "wlb", "round_robin", "max_dt"])
def test_budget_is_tau_times_objects(strategy):
    never = {1: [0.0], 2: [0.0], 3: [0.0]}  # nothing ever improves
    result = run(strategy, never, tau=3)
    assert result.num_interactions == 3 * 3 and len(result.ious) == 1 + 3 * 2


def test_metrics_by_hand_on_a_tiny_run():
    passing = {1: [0.9], 2: [0.9], 3: [0.9]}
    a = run("best", SCRIPTS, tau=2)  # budget 6: obj 2, obj 2, obj 1 → [0.6, 0.9, 0.9]
    b = run("best", passing, tau=2, sample=three_objects("b"))
    assert a.aimed == [2, 2, 1] and a.final_ious == pytest.approx([0.6, 0.9, 0.9])
    assert a.num_interactions == 6
    assert b.aimed == [] and b.num_interactions == 3
    m = mist_summary([a.final_ious, b.final_ious], [a.num_interactions, b.num_interactions])
    assert m["NCI"] == pytest.approx((6 / 3 + 3 / 3) / 2)
    assert m["NFO"] == 1 and m["NFI"] == 1
    assert m["mIoU"] == pytest.approx((0.8 + 0.9) / 2)


def test_dataset_loop_shares_one_seeded_generator():
    samples = [three_objects(f"s{k}") for k in range(3)]

    def go():
        p = ScriptedMulti(SCRIPTS, samples[0].gt)
        return [r.aimed for r in evaluate_multi_dataset(p, samples, strategy="random", seed=7)]

    first = go()
    assert first == go() and len(set(map(tuple, first))) > 1  # same run twice; images differ


class DiskPredictor(Predictor):
    """Single-object stand-in: a disk of radius 12 around the prompt's first click."""

    def _set_image(self, image):
        pass

    def _predict(self, clicks):
        h, w = self.image_size
        yy, xx = np.ogrid[:h, :w]
        first = clicks[0]
        assert first.positive  # the adapter puts the object's own first click first
        return MaskResult(mask=(xx - first.x) ** 2 + (yy - first.y) ** 2 <= 144)


def test_prompt_for_an_object_is_its_clicks_positive_and_the_rest_negative():
    def at(i: int, positive: bool = True) -> Click:
        return Click(x=i, y=i, positive=positive)

    def on(object_id: int, click: Click) -> Click:
        return Click(click.x, click.y, click.positive, object_id)

    clicks = [on(1, at(0)), on(2, at(1)), on(0, at(2, False)), on(1, at(3))]
    # object 2's own first click leads, the rest follow in time order as negatives
    assert prompt_for(2, clicks) == [at(1), at(0, False), at(2, False), at(3, False)]
    assert prompt_for(1, clicks) == [at(0), at(1, False), at(2, False), at(3)]


def test_adapter_gives_overlaps_to_the_most_recently_clicked_object():
    adapter = as_multi_instance(DiskPredictor())
    assert isinstance(adapter, PerObjectAdapter)
    adapter.set_image(np.zeros((40, 60, 3), dtype=np.uint8))
    one, two = Click(x=20, y=20, object_id=1), Click(x=35, y=20, object_id=2)
    overlap = (slice(15, 25), slice(26, 30))
    masks = adapter.predict_objects([one, two])
    assert masks[2][overlap].all() and not masks[1][overlap].any()
    masks = adapter.predict_objects([one, two, Click(x=22, y=20, object_id=1)])
    assert masks[1][overlap].all() and not masks[2][overlap].any()
    assert not (masks[1] & masks[2]).any()


def test_adapter_runs_the_whole_loop_with_a_single_object_predictor():
    sample = three_objects()
    adapter = as_multi_instance(DiskPredictor())
    result = evaluate_multi_sample(adapter, sample, strategy="worst", tau=2)
    assert result.num_interactions <= 6 and len(result.final_ious) == 3


def test_a_predictor_s_own_predict_objects_is_not_the_mist_protocol():
    # every Predictor has predict_objects (objects independent); MIST still adapts it
    assert isinstance(as_multi_instance(DiskPredictor()), PerObjectAdapter)


def test_the_loop_reads_mask_results_too():
    sample = three_objects()

    class ResultMulti(ScriptedMulti):
        def predict_objects(self, clicks):
            return {o: MaskResult(mask=m) for o, m in super().predict_objects(clicks).items()}

    a = run("best", SCRIPTS, tau=2)
    b = evaluate_multi_sample(
        ResultMulti(SCRIPTS, sample.gt), sample, strategy="best", tau=2, rng=mist_rng(0)
    )
    assert a.ious == b.ious and a.clicks == b.clicks
