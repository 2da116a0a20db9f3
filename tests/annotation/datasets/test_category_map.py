"""The COCO category map (issue 19): the upload form reads the categories first (preview),
then maps each to a new label, an existing label, or drops it; a bad map is a 400 and
nothing is stored."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from annotation.datasets.models import Image
from annotation.labeling.models import Instance
from annotation.projects.models import LabelClass
from annotation.projects.services import label_create, project_create
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db
W, H = 64, 48


def _box(x: int) -> list[list[int]]:
    return [[x, 5, x + 10, 5, x + 10, 20, x, 20]]


COCO = {
    "images": [{"id": 1, "file_name": "images/one.png", "width": W, "height": H}],
    "categories": [
        {"id": 1, "name": "sparrow"},
        {"id": 2, "name": "crow"},
        {"id": 3, "name": "pigeon"},
        {"id": 4, "name": "unused"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": _box(2)},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": _box(14)},
        {"id": 3, "image_id": 1, "category_id": 2, "segmentation": _box(26)},
        {"id": 4, "image_id": 1, "category_id": 3, "segmentation": _box(38)},
    ],
}


def _zip() -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/one.png", make_image_bytes(W, H, seed=970))
        zf.writestr("annotations/instances.json", json.dumps(COCO))
    out.seek(0)
    out.name = "export.zip"
    return out


@pytest.fixture
def world_client():
    w = make_world()  # the project has one label, "bird"
    client = APIClient()
    client.force_login(w.users["manager"])
    return w, client


def _upload(client, dataset_id: int, category_map=None):
    fields: dict = {"files": [_zip()]}
    if category_map is not None:
        fields["category_map"] = (
            category_map if isinstance(category_map, str) else json.dumps(category_map)
        )
    return client.post(f"/api/datasets/{dataset_id}/upload/", fields, format="multipart")


def test_preview_reads_the_categories_and_stores_nothing(world_client):
    w, client = world_client
    label_create(project=w.project, name="crow", color="#000000")
    images = Image.objects.count()
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/preview/", {"files": [_zip()]}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    crow = LabelClass.objects.get(project=w.project, name="crow")
    assert [(c["id"], c["name"], c["annotations"], c["label"]) for c in body["categories"]] == [
        (1, "sparrow", 1, None),
        (2, "crow", 2, crow.id),
        (3, "pigeon", 1, None),
        (4, "unused", 0, None),
    ]
    assert {lc["name"] for lc in body["labels"]} == {"bird", "crow"}
    assert body["source"] == "export.zip/annotations/instances.json"
    assert Image.objects.count() == images


def test_preview_of_a_bad_json_is_the_upload_s_400(world_client):
    w, client = world_client
    fh = io.BytesIO(b"{nope")
    fh.name = "instances.json"
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/preview/", {"coco": fh}, format="multipart"
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_preview_needs_an_admin(world_client):
    w, _ = world_client
    client = APIClient()
    client.force_login(w.users["annotator"])
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/preview/", {"files": [_zip()]}, format="multipart"
    )
    assert response.status_code == 403


def test_map_to_an_existing_label_drop_and_new(world_client):
    w, client = world_client
    response = _upload(client, w.dataset.id, {"1": w.label.id, "2": "drop", "3": "new"})
    assert response.status_code == 200, response.json()
    coco = response.json()["coco"]
    assert coco["instances_created"] == 2
    assert coco["dropped"] == 2 and coco["categories_dropped"] == ["crow"]
    assert coco["labels_created"] == ["pigeon"]  # not "unused": no annotation needs it
    assert coco["labels"] == ["bird", "pigeon"]
    names = set(LabelClass.objects.filter(project=w.project).values_list("name", flat=True))
    assert names == {"bird", "pigeon"}
    labels = Instance.objects.filter(source="import").values_list("label__name", flat=True)
    assert sorted(labels) == ["bird", "pigeon"]


def test_without_a_map_every_used_category_gets_a_label_of_its_name(world_client):
    w, client = world_client
    coco = _upload(client, w.dataset.id).json()["coco"]
    assert coco["labels_created"] == ["sparrow", "crow", "pigeon"]  # in COCO id order
    assert coco["instances_created"] == 4 and coco["dropped"] == 0
    positions = list(LabelClass.objects.filter(project=w.project).values_list("name", "position"))
    assert [name for name, _ in sorted(positions, key=lambda p: p[1])] == [
        "bird",
        "sparrow",
        "crow",
        "pigeon",
    ]


def _other_projects_label(w) -> int:
    other = project_create(name="Elsewhere", owner=w.users["outsider"])
    return label_create(project=other, name="bird", color="#00ff00").id


@pytest.mark.parametrize(
    "category_map, needle",
    [
        ({"1": 10**12}, "is not a label of project"),
        ({"1": "other"}, 'is not "new", "drop" or a label id'),
        ({"1": True}, 'is not "new", "drop" or a label id'),
        ({"1": -3}, 'is not "new", "drop" or a label id'),
        ({"x": "new"}, "is not a category id"),
        ({"99": "drop"}, "categor"),  # not in the json
        ("[1, 2]", "must be an object"),
        ("{bad json", "not valid JSON"),
        ({str(i): "new" for i in range(6000)}, "at most 5000"),
        ("other-project", "is not a label of project"),
    ],
)
def test_a_bad_map_is_a_400_and_nothing_is_stored(world_client, category_map, needle):
    w, client = world_client
    if category_map == "other-project":
        category_map = {"1": _other_projects_label(w)}
    before = (Image.objects.count(), Instance.objects.count(), LabelClass.objects.count())
    response = _upload(client, w.dataset.id, category_map)
    assert response.status_code == 400, response.json()
    assert needle in response.json()["error"]["message"], response.json()
    assert (Image.objects.count(), Instance.objects.count(), LabelClass.objects.count()) == before


def test_a_map_without_a_coco_json_is_refused(world_client):
    w, client = world_client
    fh = io.BytesIO(make_image_bytes(W, H, seed=971))
    fh.name = "lone.png"
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [fh], "category_map": json.dumps({"1": "drop"})},
        format="multipart",
    )
    assert response.status_code == 400
    assert "needs a COCO json" in response.json()["error"]["message"]
    assert not Image.objects.filter(original_name="lone.png").exists()


def test_preview_of_an_upload_without_a_json_has_no_categories(world_client):
    w, client = world_client
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("images/one.png", make_image_bytes(W, H, seed=972))
    out.seek(0)
    out.name = "plain.zip"
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/preview/", {"files": [out]}, format="multipart"
    )
    assert response.status_code == 200 and response.json()["categories"] == []
    assert not Image.objects.filter(original_name="one.png").exists()
