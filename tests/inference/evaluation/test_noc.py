"""NoC, NoF and mIoU@k from the single-object loop, with scripted predictors of known IoU."""

from __future__ import annotations

import numpy as np
import pytest

from inference import MaskResult, Predictor
from inference.evaluation.datasets import Sample
from inference.evaluation.loop import EmptyObjectError, evaluate_dataset, evaluate_sample
from inference.evaluation.metrics import iou, miou_at, noc, single_summary


class ScriptedPredictor(Predictor):
    """After k clicks, predicts the first ``ious[k-1]`` fraction of the GT's pixels (raster
    order), so the IoU after click k is exactly ``ious[k-1]``."""

    def __init__(self, gt: np.ndarray, ious: list[float]) -> None:
        super().__init__()
        self.order = np.flatnonzero(gt)
        self.ious = ious
        self.calls = 0

    def _set_image(self, image):
        pass

    def _predict(self, clicks):
        self.calls += 1
        fraction = self.ious[min(len(clicks), len(self.ious)) - 1]
        mask = np.zeros(self.image_size, dtype=bool)
        mask.flat[self.order[: round(fraction * len(self.order))]] = True
        return MaskResult(mask=mask)


def object_sample(name="obj") -> Sample:
    gt = np.zeros((60, 60), dtype=bool)
    gt[5:55, 5:55] = True  # 2500 pixels: every two-decimal IoU is exact
    return Sample(name, np.zeros((60, 60, 3), dtype=np.uint8), gt, None)


def test_noc_reads_the_first_click_reaching_the_threshold():
    sample = object_sample()
    script = [0.5, 0.8, 0.86, 0.88, 0.91] + [0.95] * 15
    # radius 0: the thin FN strip left at 0.95 would fill with radius-5 disks before click 20
    result = evaluate_sample(ScriptedPredictor(sample.gt, script), sample, exclusion_radius=0)
    assert result.ious == pytest.approx(script)
    assert len(result.clicks) == len(result.seconds) == 20
    assert noc(result.ious, 0.85) == 3 and noc(result.ious, 0.90) == 5


def test_noc_is_max_clicks_when_never_reached():
    sample = object_sample()
    result = evaluate_sample(ScriptedPredictor(sample.gt, [0.5] * 20), sample)
    summary = single_summary([result.ious], result.seconds)
    assert summary["NoC@85"] == 20 and summary["NoC@90"] == 20
    assert summary["NoF@85"] == 1 and summary["NoF@90"] == 1
    assert summary["mIoU@k"] == pytest.approx([0.5] * 20)
    assert summary["seconds_per_click"]["p50"] >= 0


def test_gt_after_k_clicks_gives_noc_k_and_carries_the_last_iou():
    sample = object_sample()
    k = 4
    predictor = ScriptedPredictor(sample.gt, [0.0] * (k - 1) + [1.0])
    result = evaluate_sample(predictor, sample, max_clicks=20)
    assert noc(result.ious, 0.85) == noc(result.ious, 0.90) == k
    # perfect: nothing left to click, so the loop stops predicting and keeps IoU 1.0
    assert predictor.calls == k and len(result.seconds) == k and result.ious[k:] == [1.0] * (20 - k)


def test_summary_over_several_samples():
    a, b = object_sample("a"), object_sample("b")
    ra = evaluate_sample(ScriptedPredictor(a.gt, [0.9] * 20), a)  # NoC 1 at both thresholds
    rb = evaluate_sample(ScriptedPredictor(b.gt, [0.6, 0.87] + [0.88] * 18), b)  # 2 and 20
    summary = single_summary([ra.ious, rb.ious], ra.seconds + rb.seconds)
    assert summary["NoC@85"] == pytest.approx(1.5) and summary["NoC@90"] == pytest.approx(10.5)
    assert summary["NoF@85"] == 0 and summary["NoF@90"] == 1 and summary["num_samples"] == 2
    assert summary["mIoU@k"][:2] == pytest.approx([0.75, 0.885])


def test_nof_counts_never_reaching_not_reaching_at_the_last_click():
    reached_at_20 = [0.5] * 19 + [0.9]
    assert noc(reached_at_20, 0.85) == 20
    assert single_summary([reached_at_20])["NoF@85"] == 0


def test_iou_leaves_out_ignored_pixels():
    gt = np.zeros((4, 4), dtype=bool)
    gt[:2] = True
    pred = np.zeros_like(gt)
    pred[:3] = True  # row 2 is FP...
    ignore = np.zeros_like(gt)
    ignore[2] = True  # ...but ignored
    assert iou(pred, gt) == pytest.approx(8 / 12) and iou(pred, gt, ignore) == 1.0
    assert iou(np.zeros_like(gt), np.zeros_like(gt)) == 1.0


def test_empty_object_is_refused_and_skipped_by_the_dataset_loop():
    sample = object_sample()
    empty = Sample("empty", sample.image, np.zeros_like(sample.gt), None)
    with pytest.raises(EmptyObjectError):
        evaluate_sample(ScriptedPredictor(sample.gt, [1.0]), empty)
    predictor = ScriptedPredictor(sample.gt, [1.0])
    with pytest.warns(UserWarning, match="skipped"):
        results = evaluate_dataset(predictor, [empty, sample], max_clicks=3)
    assert [r.name for r in results] == ["obj"]


def test_miou_at_k_averages_per_click():
    assert miou_at([[0.2, 0.4], [0.6, 0.8]], max_clicks=2) == pytest.approx([0.4, 0.6])


def test_the_share_of_first_clicks_that_return_a_blob():
    # IoU after the first click: a blob (< 0.2), a start, exactly at the bound (not a blob)
    curves = [[0.05, 0.9], [0.7, 0.95], [0.2, 0.5]]
    assert single_summary(curves)["blob_share@1"] == pytest.approx(1 / 3)
    assert single_summary([])["blob_share@1"] is None
