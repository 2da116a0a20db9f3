"""YOLO segmentation export: the Ultralytics layout, one normalised polygon per instance that
rasterises back to its mask, multi-part masks joined into one line, and the size bounds.
(Ultralytics' own reader: test_readers.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils

from annotation.common import rle
from annotation.datasets import storage
from annotation.exports import yolo
from annotation.exports.services import safe_stem
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create
from tests.annotation.exports.helpers import ellipse, open_zip, run, world


def _raster(line: str, height: int, width: int) -> tuple[int, np.ndarray]:
    """A label line back to (class, ``H×W`` bool mask), rasterised as COCO polygons are."""
    values = line.split()
    pts = np.array(values[1:], dtype=np.float64).reshape(-1, 2) * (width, height)
    rles = mask_utils.frPyObjects([pts.ravel().tolist()], height, width)
    return int(values[0]), mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.django_db
def test_layout_data_yaml_and_images_as_stored():
    w, _, _ = world()
    zf = open_zip(run(w, format="yolo", filter="all"))
    data = yaml.safe_load(zf.read("data.yaml"))
    assert data == {"train": "images", "val": "images", "nc": 2, "names": {0: "bird", 1: "cat"}}
    for image in (w.assigned_image, w.other_image):
        stem = safe_stem(image.id, image.original_name)
        ext = image.file.rsplit(".", 1)[-1].lower()
        assert zf.read(f"images/{stem}.{ext}") == storage.media_path(image.file).read_bytes()
        assert f"labels/{stem}.txt" in zf.namelist()
    assert len(zf.namelist()) == 5


@pytest.mark.django_db
def test_every_instance_is_one_normalised_polygon_that_rasterises_to_its_mask():
    w, cat, _ = world()
    job = run(w, format="yolo", filter="all")
    zf = open_zip(job)
    assert job.result["annotations"] == 5 and job.result["masks"] == "polygon"
    for image in (w.assigned_image, w.other_image):
        stem = safe_stem(image.id, image.original_name)
        lines = zf.read(f"labels/{stem}.txt").decode().splitlines()
        insts = list(Instance.objects.filter(image=image).order_by("z_order", "id"))
        assert len(lines) == len(insts)
        for line, inst in zip(lines, insts, strict=True):
            coords = [float(v) for v in line.split()[1:]]
            assert len(coords) >= 6 and len(coords) % 2 == 0
            assert all(0.0 <= v <= 1.0 for v in coords)
            cls, got = _raster(line, image.height, image.width)
            assert cls == (1 if inst.label_id == cat.id else 0)
            assert _iou(got, rle.decode(inst.mask)) >= 0.9, inst.id


@pytest.mark.django_db
def test_a_multi_part_mask_is_one_line_covering_every_part():
    w, _, _ = world()
    image = w.other_image
    h, wd = image.height, image.width
    parts = (
        ellipse(h, wd, 10, 10, 6, 5) | ellipse(h, wd, 50, 35, 8, 6) | ellipse(h, wd, 52, 8, 4, 4)
    )
    inst = instance_create(image=image, mask=rle.encode(parts), label_id=w.label.id)
    zf = open_zip(run(w, format="yolo", filter="accepted"))
    stem = safe_stem(image.id, image.original_name)
    lines = zf.read(f"labels/{stem}.txt").decode().splitlines()
    order = list(Instance.objects.filter(image=image, review_state="accepted").order_by("z_order"))
    line = lines[[i.id for i in order].index(inst.id)]
    _, got = _raster(line, h, wd)
    # the union of the three parts; the zero-width cuts between them may add a pixel line
    assert (got & parts).sum() / parts.sum() >= 0.9
    assert (got & ~parts).sum() <= 0.1 * parts.sum()


def test_joined_parts_enclose_exactly_the_sum_of_their_areas():
    squares = [
        np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)
        for x, y, s in ((0, 0, 4), (10, 0, 2), (20, 5, 3), (3, 20, 5))
    ]

    def signed(ring):
        x, y = ring[:, 0], ring[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    joined = yolo.join_parts(yolo._chain(squares))
    assert signed(joined) == pytest.approx(sum(signed(s) for s in squares))
    assert len(joined) == sum(len(s) for s in squares) + 2 * len(squares) - 2
    # every corner of every part is on the line
    for square in squares:
        for corner in square:
            assert (np.abs(joined - corner).sum(axis=1) < 1e-9).any()


def test_the_part_and_point_bounds(monkeypatch):
    h, wd = 40, 80
    blobs = np.zeros((h, wd), bool)
    for k in range(6):
        blobs |= ellipse(h, wd, 6 + 13 * k, 20, 3 + k % 3, 4)
    monkeypatch.setattr(yolo, "MAX_PARTS", 4)
    outline, dropped = yolo.mask_outline(blobs, 1.0)
    assert dropped == 2 and outline is not None
    monkeypatch.setattr(yolo, "MAX_PARTS", 50)
    big = ellipse(400, 400, 200, 200, 180, 120)
    full, _ = yolo.mask_outline(big, 0.0)
    monkeypatch.setattr(yolo, "MAX_POINTS", 40)
    bounded, _ = yolo.mask_outline(big, 0.0)
    assert len(full) > 40 >= len(bounded) >= 3
    assert yolo.mask_outline(np.zeros((5, 5), bool), 1.0) == (None, 0)


@pytest.mark.django_db
def test_empty_masks_are_skipped_and_counted():
    w, _, _ = world()
    empty = rle.encode(np.zeros((w.other_image.height, w.other_image.width), bool))
    Instance.objects.filter(pk=w.other_instance.pk).update(mask=empty)
    job = run(w, format="yolo", filter="accepted")
    open_zip(job)
    assert job.result["skipped"] == {"empty_mask": 1}
    assert job.result["skipped_images"] == {"empty_mask": [w.other_image.id]}
