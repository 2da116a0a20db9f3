"""Fitting the learned MIS ranker: IoUs against instances, top-of-list figures, and the whole
command on a tiny synthetic COCO set with the random-weight backbone."""

import json

import numpy as np
from PIL import Image

from inference.evaluation import mis_ranker
from inference.evaluation.mis_ranker import ImageRecord, instance_ious, main, top_of_list
from inference.methods.mis.ranker import FEATURE_NAMES, LearnedRanker, load_ranker
from inference.methods.mis.tree import MergeTree
from inference.methods.mis.ward import grid_edges, ward_tree


def _two_region_tree():
    """An 8×8 grid whose left half and right half differ: the root's children are the halves."""
    x = np.zeros((8, 8, 2))
    x[:, 4:, 0] = 1.0
    x += np.random.default_rng(0).normal(scale=0.01, size=x.shape)
    children, costs, _ = ward_tree(x.reshape(-1, 2), grid_edges(8, 8))
    return MergeTree(children, (8, 8), costs)


def test_instance_ious_at_quarter_size():
    tree = _two_region_tree()
    left, right = (int(v) for v in tree.children[-1])
    if tree.patch_mask(left)[0, 4]:
        left, right = right, left
    gt = np.zeros((64, 64), np.int32)
    gt[:, :32] = 1  # exactly the left half
    gt[:, 32:48] = 2  # half of the right half
    ious = instance_ious(tree, [left, right], gt, [1, 2])
    assert ious.shape == (2, 2)
    assert ious[0, 0] == 1.0 and ious[0, 1] == 0.0
    assert ious[1, 0] == 0.0 and abs(ious[1, 1] - 0.5) < 0.01


def _record(ious, scores):
    """Candidates with given IoUs (N, instances); the table's log_area column carries the
    scores a one-feature ranker reads."""
    count = len(ious)
    table = np.zeros((count, len(FEATURE_NAMES)))
    table[:, FEATURE_NAMES.index("log_area")] = scores
    table[:, FEATURE_NAMES.index("persistence")] = -np.asarray(scores)  # the reverse order
    patches = np.zeros((count, 4, count), bool)
    patches[np.arange(count), :, np.arange(count)] = True  # disjoint: no duplicates
    return ImageRecord(
        table=table,
        ious=np.asarray(ious, float),
        large=np.ones(np.shape(ious)[1], bool),
        persistence=table[:, FEATURE_NAMES.index("persistence")],
        patches=patches,
    )


def test_top_of_list_by_learned_scores_and_by_persistence():
    # 20 candidates, the first 5 match instance 0 (IoU 0.8), the rest nothing
    ious = np.zeros((20, 2))
    ious[:5, 0] = 0.8
    record = _record(ious, -np.arange(20.0))  # score falls with the index
    by_area = LearnedRanker(("log_area",), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    learned = top_of_list([record], by_area)
    assert learned["top5"] == 1.0 and learned["top10"] == 0.5 and learned["top20"] == 0.25
    assert learned["recall10"] == 0.5  # instance 0 found, instance 1 never
    persistence = top_of_list([record], "persistence")  # the reverse order: hits last
    assert persistence["top5"] == 0.0 and persistence["top10"] == 0.0
    assert persistence["top20"] == 0.25


def _write_coco(root, count=6):
    """``count`` 128×128 images: a bright box (instance 1) on a noisy dark background, and a
    second box (instance 2) of another colour."""
    images_dir = root / "coco_sample128" / "images"
    images_dir.mkdir(parents=True)
    (root / "coco_sample128" / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(count):
        rgb = rng.integers(0, 40, size=(128, 128, 3)).astype(np.uint8)
        top, left = 8 + 4 * i, 8 + 6 * i
        rgb[top : top + 64, left : left + 56] = (230, 40, 40)
        rgb[84:124, 76:124] = (40, 220, 60)
        Image.fromarray(rgb).save(images_dir / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": 128, "width": 128})
        boxes = [(left, top, left + 56, top + 64), (76, 84, 124, 124)]
        for j, (x0, y0, x1, y1) in enumerate(boxes):
            annotations.append(
                {
                    "id": 10 * i + j + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": float((x1 - x0) * (y1 - y0)),
                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                }
            )
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}
    path = root / "coco_sample128" / "annotations" / "instances_train2017.json"
    path.write_text(json.dumps(data))


def test_the_command_fits_and_saves_a_ranker_on_a_tiny_set(tmp_path, capsys, monkeypatch):
    _write_coco(tmp_path / "data")
    monkeypatch.setattr(mis_ranker, "C_VALUES", (1.0,))
    argv = [
        "--data", str(tmp_path / "data"),
        "--cache", str(tmp_path / "cache"),
        "--out", str(tmp_path / "ranker.npz"),
        "--backbone", "tiny-effnet",
        "--folds", "3",
        "--confirm",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "chosen: " in printed and "-- odd (confirm): 3 images" in printed
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"{i:03d}.npz" for i in range(6)
    ]
    ranker = load_ranker(tmp_path / "ranker.npz")
    assert ranker.names in mis_ranker.VARIANTS.values()
    assert np.all(np.isfinite(ranker.coef))
    # seeded and cached: a second run chooses and saves the same weights
    assert main([*argv[:5], str(tmp_path / "again.npz"), *argv[6:]]) == 0
    again = load_ranker(tmp_path / "again.npz")
    assert again.names == ranker.names and np.array_equal(again.coef, ranker.coef)
