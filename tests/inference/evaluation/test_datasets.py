"""Dataset loaders on tiny folders and COCO files written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.evaluation.datasets import (
    CocoDataset,
    FolderDataset,
    Sample,
    load_dataset,
    paint_largest_first,
)


def write_folder(root: Path, n: int = 4, size=(40, 30)) -> Path:
    """``n`` images (png/jpg/bmp mixed) with masks: 255 square, 128 band around it."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    w, h = size
    for k in range(n):
        image = np.full((h, w, 3), 30 * k, dtype=np.uint8)
        suffix = ["png", "jpg", "bmp", "PNG"][k % 4]
        Image.fromarray(image).save(root / "images" / f"img{k}.{suffix}")
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[5:25, 8:30] = 128
        mask[8:22, 11:27] = 255
        Image.fromarray(mask).save(root / "masks" / f"img{k}.bmp")
    return root


def test_folder_dataset_band_is_ignored_and_object_is_above_128(tmp_path):
    ds = load_dataset(write_folder(tmp_path / "toy"))
    assert isinstance(ds, FolderDataset) and len(ds) == 4 and ds.name == "toy"
    sample = ds[0]
    assert isinstance(sample, Sample) and sample.name == "img0"
    assert sample.image.shape == (30, 40, 3) and sample.image.dtype == np.uint8
    assert sample.gt.dtype == bool and sample.gt.sum() == 14 * 16
    assert sample.ignore is not None and sample.ignore.sum() == 20 * 22 - 14 * 16
    assert not (sample.gt & sample.ignore).any()
    assert [s.name for s in ds] == ["img0", "img1", "img2", "img3"]


def test_folder_dataset_band_readings(tmp_path):
    root = write_folder(tmp_path / "toy", n=1)
    as_object = FolderDataset(root, band="object")[0]
    assert as_object.ignore is None and as_object.gt.sum() == 20 * 22  # M2N2: any non-zero
    as_background = FolderDataset(root, band="background")[0]
    assert as_background.ignore is None and as_background.gt.sum() == 14 * 16
    multi = FolderDataset(root, protocol="multi")[0]
    assert multi.gt.dtype == np.int32 and set(np.unique(multi.gt)) == {0, 1}
    assert multi.object_ids == [1]


def test_colour_masks_are_read_on_channel_0(tmp_path):
    root = write_folder(tmp_path / "toy", n=1)
    mask = np.zeros((30, 40, 3), dtype=np.uint8)
    mask[0:10, 0:10, 0] = 255  # object in red only
    mask[20:30, 20:30, 1] = 255  # green is not read
    (root / "masks" / "img0.bmp").unlink()
    Image.fromarray(mask).save(root / "masks" / "img0.png")
    assert FolderDataset(root)[0].gt.sum() == 100


def test_limit_and_seeded_subset(tmp_path):
    root = write_folder(tmp_path / "toy", n=4)
    assert [s.name for s in FolderDataset(root, limit=2)] == ["img0", "img1"]
    a = [s.name for s in FolderDataset(root, limit=3, subset_seed=5)]
    assert a == [s.name for s in FolderDataset(root, limit=3, subset_seed=5)]
    subsets = {tuple(s.name for s in FolderDataset(root, limit=3, subset_seed=k)) for k in range(6)}
    assert subsets != {tuple(a)}  # the seed matters
    with pytest.raises(ValueError):
        FolderDataset(root, limit=0)


def test_halves_split_by_position_and_cover_the_set(tmp_path):
    root = write_folder(tmp_path / "toy", n=5)
    even = [s.name for s in load_dataset(root, half=0)]
    odd = [s.name for s in load_dataset(root, half=1)]
    assert even == ["img0", "img2", "img4"] and odd == ["img1", "img3"]
    assert [s.name for s in FolderDataset(root, half=1, limit=1)] == ["img1"]
    with pytest.raises(ValueError, match="half"):
        FolderDataset(root, half=2)


def test_folder_errors_are_clear(tmp_path):
    root = write_folder(tmp_path / "toy", n=2)
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(root / "masks" / "img1.bmp")
    with pytest.raises(ValueError, match="img1.bmp is"):
        FolderDataset(root)[1]
    (root / "masks" / "img1.bmp").unlink()
    with pytest.raises(ValueError, match="have no mask"):
        FolderDataset(root)
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nope")


def square_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def ann(ann_id, image_id, area, segmentation, iscrowd=0):
    return {
        "id": ann_id,
        "image_id": image_id,
        "iscrowd": iscrowd,
        "area": area,
        "segmentation": segmentation,
        "category_id": 1,
    }


def write_coco(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in ("a.jpg", "b.png"):
        Image.fromarray(np.zeros((50, 60, 3), dtype=np.uint8)).save(root / "images" / name)
    from pycocotools import mask as mask_utils

    crowd = np.zeros((50, 60), dtype=np.uint8, order="F")
    crowd[40:50, 0:10] = 1
    crowd_rle = mask_utils.encode(crowd)
    crowd_rle["counts"] = crowd_rle["counts"].decode()
    # column-major runs: 260 off, 20 on, 30 off, 20 on, the rest off: 40 object pixels
    uncompressed = {"size": [50, 60], "counts": [260, 20, 30, 20, 50 * 60 - 330]}
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 50, "width": 60},
            {"id": 2, "file_name": "b.png", "height": 50, "width": 60},
            {"id": 3, "file_name": "none.jpg", "height": 50, "width": 60},
        ],
        "annotations": [
            ann(10, 1, 1200, square_polygon(10, 10, 50, 40)),
            ann(11, 1, 100, square_polygon(20, 20, 30, 30)),
            ann(12, 1, 100, crowd_rle, iscrowd=1),
            ann(13, 1, 4, square_polygon(0, 0, 2, 2)),
            ann(20, 2, 40, uncompressed),
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_single_one_sample_per_annotation_crowd_skipped(tmp_path):
    ds = load_dataset(write_coco(tmp_path / "toycoco"), min_area=10)
    assert isinstance(ds, CocoDataset) and ds.name == "toycoco"
    assert [s.name for s in ds] == ["a#10", "a#11", "b#20"]  # crowd 12 and tiny 13 skipped
    big, small, rle = list(ds)
    assert big.gt.dtype == bool and big.gt.shape == (50, 60) and big.ignore is None
    # a polygon with corners (10,10)-(50,40) covers about 40×30 pixels once rasterised
    assert abs(int(big.gt.sum()) - 40 * 30) < 80 and big.gt[25, 30] and not big.gt[5, 5]
    assert small.gt[25, 25] and rle.gt.sum() == 40


def test_coco_multi_paints_largest_first_so_small_objects_win(tmp_path):
    ds = CocoDataset(write_coco(tmp_path / "toycoco"), protocol="multi")
    assert [s.name for s in ds] == ["a", "b"]  # image 3 has no annotation
    a = ds[0]
    assert a.gt.dtype == np.int32 and a.object_ids == [1, 2, 3]  # 10, 11 and the 4-px 13
    assert a.gt[25, 25] == 2 and a.gt[15, 15] == 1  # the small square sits on the big one
    assert (a.gt == 0)[45, 5]  # the crowd region is plain background


def test_paint_drops_hidden_objects_and_renumbers():
    big = np.zeros((10, 10), dtype=bool)
    big[:, :] = True
    hidden = np.zeros_like(big)
    hidden[2:4, 2:4] = True
    cover = np.zeros_like(big)
    cover[1:5, 1:5] = True  # smaller than big, larger than hidden
    cover_only = paint_largest_first([big, cover])
    assert cover_only[2, 2] == 2 and cover_only[0, 0] == 1
    labels = paint_largest_first([big, hidden, cover])
    assert labels[2, 2] == 2 and labels[1, 1] == 3  # hidden (smallest) is painted last and wins
    equal = paint_largest_first([hidden, hidden.copy()])  # a tie: given order, the later one wins
    assert set(np.unique(equal)) == {0, 1} and equal[2, 2] == 1


def test_coco_errors(tmp_path):
    path = write_coco(tmp_path / "toycoco")
    with pytest.raises(FileNotFoundError):
        CocoDataset(path, tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        CocoDataset(tmp_path / "missing.json")
