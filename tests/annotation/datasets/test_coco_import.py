"""COCO import: every segmentation form becomes stored RLE; bad files change nothing."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from rest_framework.test import APIClient

from annotation.common import rle
from annotation.datasets.models import Image
from annotation.labeling.models import Instance
from annotation.projects.models import LabelClass
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db
W, H = 64, 48


def _coco(annotations, images=None, categories=None) -> bytes:
    return json.dumps(
        {
            "images": images
            if images is not None
            else [
                {"id": 1, "file_name": "one.png", "width": W, "height": H},
                {"id": 2, "file_name": "two.png", "width": W, "height": H},
            ],
            "categories": categories
            if categories is not None
            else [
                {"id": 7, "name": "cat"},
                {"id": 9, "name": "bird"},
            ],
            "annotations": annotations,
        }
    ).encode()


def _post(client, dataset_id, coco: bytes, files=(("one.png", 301), ("two.png", 302))):
    payload = {"files": [], "coco": io.BytesIO(coco)}
    payload["coco"].name = "instances.json"
    for name, seed in files:
        fh = io.BytesIO(make_image_bytes(W, H, seed=seed))
        fh.name = name
        payload["files"].append(fh)
    return client.post(f"/api/datasets/{dataset_id}/upload/", payload, format="multipart")


@pytest.fixture
def world_client():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["manager"])
    return w, client


def _ref_masks():
    box = np.zeros((H, W), dtype=np.uint8)
    box[5:20, 10:30] = 1
    compressed = mask_utils.encode(np.asfortranarray(box))
    # uncompressed RLE: column-major run lengths starting with zeros
    flat = box.flatten(order="F")
    runs, current, count = [], 0, 0
    for v in flat:
        if v == current:
            count += 1
        else:
            runs.append(count)
            current, count = v, 1
    runs.append(count)
    return (
        box,
        {"size": [H, W], "counts": compressed["counts"].decode()},
        {"size": [H, W], "counts": runs},
    )


def test_polygon_rle_and_uncompressed_rle_all_become_the_same_stored_mask(world_client):
    w, client = world_client
    box, compressed, uncompressed = _ref_masks()
    polygon = [[10, 5, 30, 5, 30, 20, 10, 20]]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "segmentation": compressed, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 9, "segmentation": uncompressed, "iscrowd": 0},
        {
            "id": 3,
            "image_id": 2,
            "category_id": 9,
            "segmentation": polygon,
            "iscrowd": 0,
            "score": 0.5,
        },
        {"id": 4, "image_id": 2, "category_id": 9, "segmentation": compressed, "iscrowd": 1},
    ]
    response = _post(client, w.dataset.id, _coco(anns))
    assert response.status_code == 200, response.json()
    summary = response.json()["coco"]
    assert summary["instances_created"] == 3 and summary["crowd_skipped"] == 1
    assert set(summary["labels"]) == {"cat", "bird"}
    one = Image.objects.get(dataset=w.dataset, original_name="one.png")
    masks = [rle.decode(i.mask) for i in Instance.objects.filter(image=one).order_by("id")]
    assert all((m == box.astype(bool)).all() for m in masks)
    inst = Instance.objects.filter(image=one).first()
    assert inst.area == box.sum() and inst.bbox == [10.0, 5.0, 20.0, 15.0]
    assert inst.source == "import"
    poly = Instance.objects.get(image__original_name="two.png")
    assert poly.score == 0.5 and abs(poly.area - 20 * 15) <= 40  # rasterised polygon edges
    assert LabelClass.objects.filter(project=w.project, name="cat").exists()


@pytest.mark.parametrize(
    "coco, needle",
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "top level must be an object"),
        (
            _coco(
                [{"id": 5, "image_id": 99, "category_id": 7, "segmentation": [[0, 0, 5, 0, 5, 5]]}]
            ),
            "annotations[0] (id 5): image_id 99 is not in 'images'",
        ),
        (
            _coco(
                [{"id": 6, "image_id": 1, "category_id": 3, "segmentation": [[0, 0, 5, 0, 5, 5]]}]
            ),
            "annotations[0] (id 6): category_id 3 is not in 'categories'",
        ),
        (
            _coco(
                [
                    {
                        "id": 8,
                        "image_id": 1,
                        "category_id": 7,
                        "segmentation": {"size": [10, 10], "counts": "abc"},
                    }
                ]
            ),
            "annotations[0] (id 8): RLE size [10, 10] does not match",
        ),
        (
            _coco(
                [
                    {
                        "id": 9,
                        "image_id": 1,
                        "category_id": 7,
                        "segmentation": {"size": [H, W], "counts": [1, 2]},
                    }
                ]
            ),
            "uncompressed RLE covers 3 pixels",
        ),
        (
            _coco([{"id": 10, "image_id": 1, "category_id": 7, "segmentation": [[1, 2, 3]]}]),
            "a polygon needs an even number",
        ),
        (
            _coco([], images=[{"id": 1, "file_name": "one.png"}]),
            "images[0] (id 1): needs positive integer",
        ),
    ],
)
def test_bad_coco_is_refused_naming_the_entry_and_nothing_is_saved(world_client, coco, needle):
    w, client = world_client
    before_images = Image.objects.count()
    before_instances = Instance.objects.count()
    response = _post(client, w.dataset.id, coco)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"], response.json()
    assert Image.objects.count() == before_images
    assert Instance.objects.count() == before_instances


def test_coco_inside_a_zip_and_unmatched_or_mis_sized_entries_are_reported(world_client):
    w, client = world_client
    _, compressed, _ = _ref_masks()
    images = [
        {"id": 1, "file_name": "images/one.png", "width": W, "height": H},
        {"id": 2, "file_name": "missing.png", "width": W, "height": H},
        {"id": 3, "file_name": "small.png", "width": 10, "height": 10},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "segmentation": compressed},
        {"id": 2, "image_id": 2, "category_id": 7, "segmentation": compressed},
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("images/one.png", make_image_bytes(W, H, seed=401))
        zf.writestr("images/small.png", make_image_bytes(W, H, seed=402))
        zf.writestr("annotations/instances_default.json", _coco(anns, images=images))
    fh = io.BytesIO(out.getvalue())
    fh.name = "export.zip"
    body = client.post(
        f"/api/datasets/{w.dataset.id}/upload/", {"files": [fh]}, format="multipart"
    ).json()
    assert body["accepted"] == 2
    assert body["coco"]["instances_created"] == 1 and body["coco"]["annotations_skipped"] == 1
    warnings = " ".join(body["coco"]["warnings"])
    assert "missing.png" in warnings and "10×10" in warnings
