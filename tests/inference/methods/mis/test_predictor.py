"""The ``mis`` predictor on a tiny random-weight backbone, and the resumable batch job."""

import json

import numpy as np
import pytest
from PIL import Image

from inference import Click, build_predictor
from inference.methods.mis import batch


def _image():
    img = np.zeros((96, 128, 3), np.uint8)
    img[:] = (30, 120, 40)
    img[24:72, 32:96] = (220, 40, 40)
    return img


@pytest.fixture(scope="module")
def predictor():
    p = build_predictor("mis", backbone="tiny-effnet", refine_band=0)
    p.set_image(_image())
    return p


def test_click_mask_covers_the_click_and_has_image_size(predictor):
    result = predictor.predict([Click(x=64, y=48)])
    assert result.mask.shape == (96, 128) and result.mask.dtype == bool
    assert result.mask[48, 64]
    assert predictor.timings["merge"] >= 0 and predictor.tree.n_leaves == 16 * 12


def test_coarser_and_finer_walk_the_tree_and_undo(predictor):
    clicks = [Click(x=64, y=48)]
    base = predictor.predict(clicks).mask.sum()
    state = predictor.get_state()
    predictor.coarser()
    coarse = predictor.predict(clicks).mask
    assert coarse.sum() >= base and coarse[48, 64]
    predictor.set_state(state)
    predictor.finer()
    fine = predictor.predict(clicks).mask
    assert fine.sum() <= base and fine[48, 64]
    predictor.set_state(state)
    assert predictor.predict(clicks).mask.sum() == base


def test_negative_click_removes_its_region_only(predictor):
    from inference.methods.mis import MergeTree, grid_edges, ward_tree

    # a known tree on the 12×16 grid: left | middle | right thirds, middle closer to right
    h, w = predictor.tree.grid_hw
    x = np.zeros((h, w, 1))
    x[:, 5:11] = 10.0
    x[:, 11:] = 11.0
    x += np.random.default_rng(0).normal(scale=0.01, size=x.shape)
    saved = predictor.tree
    predictor.tree = MergeTree(ward_tree(x.reshape(-1, 1), grid_edges(h, w))[0], (h, w))
    try:
        # 12 of 192 patches: the smallest selectable node is a third of a region, so climb
        predictor.set_state(0)
        base = predictor.select([Click(x=60, y=48)])
        region = base
        while not region[:, 11:].any():  # climb until the selection reaches the right third
            predictor.coarser()
            region = predictor.select([Click(x=60, y=48)])
        assert not region[:, :5].any()
        cut = predictor.select([Click(x=60, y=48), Click(x=120, y=48, positive=False)])
        assert cut[:, 5:11].all() and not cut[:, 11:].any()
    finally:
        predictor.tree = saved
        predictor.set_state(0)


def test_batch_resumes_and_exports_coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(_image(), 10 * i, axis=1)).save(images / f"im{i}.png")
    (images / "zbroken.png").write_bytes(b"not a png")
    refs = batch.images_from(images)
    seen = []
    stop_after = iter([False, True])  # stop after the first image
    first = batch.build_trees(
        refs, tmp_path / "out", backbone="tiny-effnet", should_stop=lambda: next(stop_after, True)
    )
    assert first["built"] == 1
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "trees").iterdir()}
    second = batch.build_trees(
        refs, tmp_path / "out", backbone="tiny-effnet", progress=lambda d, t, k: seen.append((d, t))
    )
    assert second["skipped"] == 1 and second["built"] == 2 and second["errors"] == 1
    for name, mtime in stamp.items():  # finished images were not redone
        assert (tmp_path / "out" / "trees" / name).stat().st_mtime_ns == mtime
    assert "zbroken" in json.loads((tmp_path / "out" / "errors.json").read_text())
    counts = batch.export_coco(tmp_path / "out", refs, tmp_path / "proposals.json")
    coco = json.loads((tmp_path / "proposals.json").read_text())
    assert counts["images"] == 3 and len(coco["annotations"]) == counts["annotations"] > 0
    from pycocotools import mask as mask_utils

    ann = coco["annotations"][0]
    assert mask_utils.area(ann["segmentation"]) == ann["area"]
    assert 0 < ann["score"] <= 1
