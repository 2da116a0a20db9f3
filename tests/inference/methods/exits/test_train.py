import numpy as np
import torch

from inference.evaluation.datasets import rasterize
from inference.methods.exits.batch import mask_annotation, records_from_coco
from inference.methods.exits.data import ImageCache
from inference.methods.exits.generator import build_generator
from inference.methods.exits.points import crop_image, crop_window
from inference.methods.exits.train import ExitsConfig, predict_probabilities, train_stage


def _mean_iou(model, records, data, config):
    cache, ious = ImageCache(), []
    anns = {a["id"]: a for a in data["annotations"]}
    for r in records:
        image = cache.get(r.image_path)
        prob = predict_probabilities(
            model, crop_image(image, crop_window(r.box, config.crop_size))[None]
        )[0]
        _, mask = mask_annotation(r, prob, image, config)
        gt = rasterize(anns[r.ann_id]["segmentation"], *image.shape[:2])
        ious.append((mask & gt).sum() / (mask | gt).sum())
    return float(np.mean(ious))


def test_a_tiny_generator_learns_synthetic_shapes(shapes_coco, tmp_path):
    torch.manual_seed(0)
    records, data = records_from_coco(shapes_coco)
    # the network's own masks (refine="none"): GrabCut would flatter the untrained model
    config = ExitsConfig(
        encoder="tiny-conv", crop_size=64, batch_size=8, lr=1e-2, crf_iterations=5, refine="none"
    )
    model = build_generator("tiny-conv", seed=0)
    before = _mean_iou(model, records, data, config)
    stats = train_stage(model, records, config, stage="warmup", epochs=40, checkpoint=None)
    after = _mean_iou(model, records, data, config)
    assert stats["completed"] == 1.0
    assert after > before + 0.1 and after > 0.75, (before, after)


def test_vit_similarity_is_row_stochastic_over_patches():
    model = build_generator("tiny-vit", seed=0)
    x = torch.randn(2, 3, 64, 64)
    s = model.similarity(x)
    assert s.shape == (2, 16, 16)
    torch.testing.assert_close(s.sum(-1), torch.ones(2, 16))
    assert model(x).shape == (2, 1, 16, 16)


def test_refinements_keep_shapes_and_the_box():
    import pytest

    from inference.methods.exits.baseline import grabcut_refine

    model = build_generator("tiny-conv", seed=0).eval()
    crops = np.random.default_rng(0).integers(0, 255, size=(2, 64, 64, 3), dtype=np.uint8)
    assert predict_probabilities(model, crops).shape == (2, 16, 16)
    refined = predict_probabilities(model, crops, crf_iterations=3)
    assert refined.shape == (2, 64, 64) and refined.min() >= 0 and refined.max() <= 1
    image = np.full((50, 60, 3), 100, np.uint8)
    image[10:30, 20:40] = (240, 20, 20)
    prob = np.zeros((50, 60), np.float32)
    prob[12:28, 22:38] = 0.9
    mask = grabcut_refine(
        image, prob, (20.0, 10.0, 40.0, 30.0), [(20, 20), (39, 20), (30, 10), (30, 29)]
    )
    assert mask[10:30, 20:40].mean() > 0.9 and not mask[:, :19].any()
    with pytest.raises(ValueError):
        ExitsConfig(refine="bogus")


def test_grabcut_refinement_is_kept_only_where_it_agrees_with_the_network():
    from pathlib import Path

    from inference.methods.exits.data import ObjectRecord

    image = np.full((80, 80, 3), 100, np.uint8)
    image[20:60, 20:60] = (230, 30, 30)  # one red square
    full = np.zeros((80, 80), np.float32)
    full[20:60, 20:40] = 0.9  # the network found its left half only
    box = (20.0, 20.0, 60.0, 60.0)
    record = ObjectRecord(ann_id=1, image_id=1, image_path=Path("x.png"), category_id=1, box=box)
    prob = crop_image(full, crop_window(box, 64))

    def right_half(**kw):
        _, mask = mask_annotation(
            record, prob, image, ExitsConfig(encoder="tiny-conv", crop_size=64, **kw)
        )
        assert mask[20:60, 20:40].all() and not mask[:20].any()
        return mask[20:60, 40:60].mean()

    assert right_half(refine="grabcut", refine_min_agreement=0.0) == 1.0  # GrabCut fills the square
    # IoU 0.5 < 0.6: the network's
    assert right_half(refine="grabcut", refine_min_agreement=0.6) == 0.0
    assert right_half(refine="none") == 0.0
    assert ExitsConfig().refine == "grabcut"
