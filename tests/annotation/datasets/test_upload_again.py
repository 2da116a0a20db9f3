"""Uploading again (issue 19): the same zip twice adds nothing the second time, a COCO json
applied to stored images adds only the masks not already there, and stored images keep their
base name with the path inside the archive beside it."""

from __future__ import annotations

import importlib
import io
import json
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.datasets.models import Image
from annotation.datasets.services import Upload, dataset_upload
from annotation.labeling.models import Instance
from annotation.projects.models import LabelClass
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db
W, H = 64, 48
NAMES = ["a.png", "b.png", "c.png"]


def _box(x: int) -> list[list[int]]:
    return [[x, 5, x + 10, 5, x + 10, 20, x, 20]]


def _coco(per_image: int = 2, extra: int = 0) -> dict:
    """Three images under images/, ``per_image`` masks of category 1 on each, and ``extra``
    masks of category 2 on the first."""
    anns = [
        {"id": 0, "image_id": i + 1, "category_id": 1, "segmentation": _box(2 + 12 * k)}
        for i in range(len(NAMES))
        for k in range(per_image)
    ]
    anns += [
        {"id": 0, "image_id": 1, "category_id": 2, "segmentation": _box(40 - k)}
        for k in range(extra)
    ]
    for n, ann in enumerate(anns, 1):
        ann["id"] = n
    return {
        "images": [
            {"id": i + 1, "file_name": f"images/{name}", "width": W, "height": H}
            for i, name in enumerate(NAMES)
        ],
        "categories": [{"id": 1, "name": "sparrow"}, {"id": 2, "name": "crow"}],
        "annotations": anns,
    }


def _zip(coco: dict | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, name in enumerate(NAMES):
            zf.writestr(f"images/{name}", make_image_bytes(W, H, seed=900 + i))
        zf.writestr("annotations/instances.json", json.dumps(coco or _coco()))
    return out.getvalue()


def _named(data: bytes, name: str) -> io.BytesIO:
    fh = io.BytesIO(data)
    fh.name = name
    return fh


@pytest.fixture
def world_client():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["manager"])
    return w, client


def _post(client, dataset_id: int, **fields):
    return client.post(f"/api/datasets/{dataset_id}/upload/", fields, format="multipart")


def test_the_same_zip_twice_adds_no_image_and_no_mask_the_second_time(world_client):
    w, client = world_client
    first = _post(client, w.dataset.id, files=[_named(_zip(), "export.zip")])
    assert first.status_code == 200, first.json()
    body = first.json()
    assert (body["accepted"], body["refused"], body["duplicates"]) == (3, 0, 0)
    assert body["coco"]["instances_created"] == 6
    images, masks = Image.objects.count(), Instance.objects.count()

    again = _post(client, w.dataset.id, files=[_named(_zip(), "export.zip")])
    assert again.status_code == 200, again.json()
    body = again.json()
    assert (body["accepted"], body["refused"], body["duplicates"]) == (0, 3, 3)
    assert all("duplicate of image" in f["reason"] for f in body["files"])
    coco = body["coco"]
    assert coco["instances_created"] == 0
    assert coco["duplicates_skipped"] == 6
    assert coco["annotations_skipped"] == 0 and coco["labels_created"] == []
    assert (Image.objects.count(), Instance.objects.count()) == (images, masks)


def test_a_refused_image_brings_in_nothing_even_when_a_stored_image_has_its_name(world_client):
    """A corrupt images/a.png must not put its masks on the a.png stored earlier."""
    w, client = world_client
    _post(client, w.dataset.id, files=[_named(make_image_bytes(W, H, seed=950), "a.png")])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("images/a.png", b"not a png at all")
        zf.writestr("instances.json", json.dumps(_coco(per_image=1)))
    body = _post(client, w.dataset.id, files=[_named(out.getvalue(), "broken.zip")]).json()
    assert body["accepted"] == 0 and body["duplicates"] == 0
    assert body["coco"]["instances_created"] == 0
    assert body["coco"]["annotations_skipped"] == 3  # a.png refused; b.png, c.png not stored
    assert "the file was refused" in " ".join(body["coco"]["warnings"])
    assert not Instance.objects.filter(image__original_name="a.png").exists()


def test_a_coco_json_on_stored_images_adds_only_the_new_masks(world_client):
    w, client = world_client
    _post(client, w.dataset.id, files=[_named(_zip(_coco(per_image=1)), "export.zip")])
    assert Instance.objects.filter(source="import").count() == 3
    # the same file with one more mask per image and two of another category; a person has
    # since refined one imported mask (its mask changed, base_mask keeps the imported one)
    refined = Instance.objects.filter(source="import").order_by("id").first()
    refined.base_mask, refined.mask = refined.mask, Instance.objects.get(pk=w.instance.pk).mask
    refined.save()
    coco = _coco(per_image=2, extra=2)
    coco["annotations"].append({**coco["annotations"][0], "id": 999})  # repeated in the file

    with CaptureQueriesContext(connection) as queries:
        body = _post(
            client, w.dataset.id, coco=_named(json.dumps(coco).encode(), "instances.json")
        ).json()
    summary = body["coco"]
    assert summary["instances_created"] == 3 + 2
    assert summary["duplicates_skipped"] == 3 + 1
    assert summary["labels_created"] == ["crow"]
    assert Instance.objects.filter(source="import").count() == 3 + 5
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "labeling_instance"' in q["sql"]]
    assert len(reads) == 1, reads  # the existing masks of all three images: one query

    # and once more: nothing new
    body = _post(
        client, w.dataset.id, coco=_named(json.dumps(coco).encode(), "instances.json")
    ).json()
    assert body["coco"]["instances_created"] == 0
    assert body["coco"]["duplicates_skipped"] == len(coco["annotations"])


def test_new_masks_go_on_top_of_the_image_s_existing_ones(world_client):
    w, client = world_client
    image = Image.objects.get(pk=w.assigned_image.pk)
    top = max(Instance.objects.filter(image=image).values_list("z_order", flat=True))
    coco = {
        "images": [{"id": 1, "file_name": image.original_name, "width": image.width,
                    "height": image.height}],
        "categories": [{"id": 1, "name": "bird"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _box(1)}],
    }  # fmt: skip
    body = _post(
        client, w.dataset.id, coco=_named(json.dumps(coco).encode(), "instances.json")
    ).json()
    assert body["coco"]["instances_created"] == 1, body
    new = Instance.objects.filter(image=image, source="import").get()
    assert new.z_order == top + 1 and new.label_id == w.label.id


def test_stored_names_drop_the_archive_path_and_keep_it_as_source_path(world_client):
    w, client = world_client
    body = _post(client, w.dataset.id, files=[_named(_zip(), "export.zip")]).json()
    ids = [f["image_id"] for f in body["files"]]
    rows = Image.objects.filter(id__in=ids).order_by("original_name")
    assert [(r.original_name, r.source_path) for r in rows] == [
        (name, f"images/{name}") for name in NAMES
    ]
    shown = client.get(f"/api/images/{ids[0]}/").json()
    assert shown["original_name"] == "a.png" and shown["source_path"] == "images/a.png"
    # a json naming the images by base name alone finds them too
    coco = _coco(per_image=1)
    for entry in coco["images"]:
        entry["file_name"] = entry["file_name"].removeprefix("images/")
    coco["annotations"][0]["segmentation"] = _box(30)
    summary = _post(
        client, w.dataset.id, coco=_named(json.dumps(coco).encode(), "instances.json")
    ).json()["coco"]
    assert (summary["instances_created"], summary["duplicates_skipped"]) == (1, 2)


def test_a_name_two_stored_images_share_is_not_guessed(world_client):
    w, client = world_client
    for folder, seed in (("day", 960), ("night", 961)):
        dataset_upload(
            dataset=w.dataset,
            uploads=[Upload(f"{folder}/x.png", io.BytesIO(make_image_bytes(W, H, seed=seed)))],
        )
    coco = {
        "images": [
            {"id": 1, "file_name": "x.png", "width": W, "height": H},
            {"id": 2, "file_name": "night/x.png", "width": W, "height": H},
        ],
        "categories": [{"id": 1, "name": "owl"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": _box(1)},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": _box(1)},
        ],
    }
    summary = _post(
        client, w.dataset.id, coco=_named(json.dumps(coco).encode(), "instances.json")
    ).json()["coco"]
    assert summary["instances_created"] == 1 and summary["annotations_skipped"] == 1
    assert "2 stored images have this name" in " ".join(summary["warnings"])
    assert Instance.objects.get(label__name="owl").image.source_path == "night/x.png"
    assert LabelClass.objects.filter(project=w.project, name="owl").count() == 1


def test_the_migration_moves_an_archive_path_out_of_the_name(world_client):
    from django.apps import apps

    migration = importlib.import_module("annotation.datasets.migrations.0003_image_source_path")
    w, _ = world_client
    Image.objects.filter(pk=w.assigned_image.pk).update(
        original_name="images/sub/old.png", source_path=""
    )
    migration.split_names(apps, None)
    row = Image.objects.get(pk=w.assigned_image.pk)
    assert (row.original_name, row.source_path) == ("old.png", "images/sub/old.png")
