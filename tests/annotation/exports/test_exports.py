"""Exports round-trip: COCO through pycocotools, VOC PNGs decoded back, filters, safety, cancel.
YOLO: test_yolo.py; sources, filters and skipped masks: test_sources.py; Datumaro and
Ultralytics reading the zips: test_readers.py (slow)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.common import rle
from annotation.datasets import storage
from annotation.exports.records import arcname
from annotation.exports.services import safe_stem
from annotation.exports.voc import PALETTE, VOID
from annotation.jobs.engine import JobContext, job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance
from tests.annotation.exports.helpers import open_zip as _zip
from tests.annotation.exports.helpers import read_coco as _coco
from tests.annotation.exports.helpers import run as _run
from tests.annotation.exports.helpers import world as _world
from tests.factories import make_world


@pytest.mark.django_db
def test_coco_rle_reloads_in_pycocotools_pixel_for_pixel(tmp_path):
    w, cat, _pseudo = _world()
    zf = _zip(_run(w, format="coco", masks="rle", filter="all"))
    coco = _coco(zf, tmp_path)
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [
        (1, "bird"),
        (2, "cat"),
    ]
    stored = {i.id: i for i in Instance.objects.filter(image__dataset=w.dataset)}
    assert sorted(coco.getAnnIds()) == sorted(stored)
    for ann in coco.loadAnns(coco.getAnnIds()):
        inst = stored[ann["id"]]
        mask = coco.annToMask(ann).astype(bool)
        assert np.array_equal(mask, rle.decode(inst.mask))
        area, bbox = rle.area_and_bbox(inst.mask)
        assert ann["area"] == area == mask.sum() and ann["bbox"] == bbox and ann["iscrowd"] == 0
        assert ann["category_id"] == (2 if inst.label_id == cat.id else 1)
        assert ann["image_id"] == inst.image_id
    names = set(zf.namelist())
    for img in coco.loadImgs(coco.getImgIds()):
        data = zf.read(f"images/{img['file_name']}")
        assert PILImage.open(io.BytesIO(data)).size == (img["width"], img["height"])
    assert len(coco.getImgIds()) == 2 and len(names) == 3


@pytest.mark.django_db
def test_coco_polygons_are_close_and_area_bbox_match_their_rasterisation(tmp_path):
    w, _, _ = _world()
    job = _run(w, format="coco", masks="polygon", tolerance=1.0, filter="all")
    coco = _coco(_zip(job), tmp_path)
    stored = {i.id: i for i in Instance.objects.filter(image__dataset=w.dataset)}
    assert job.result["annotations"] == len(stored) == 5
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert isinstance(ann["segmentation"], list) and all(
            len(p) >= 6 for p in ann["segmentation"]
        )
        got = coco.annToMask(ann).astype(bool)
        want = rle.decode(stored[ann["id"]].mask)
        assert (got & want).sum() / (got | want).sum() >= 0.9, ann["id"]
        ys, xs = np.nonzero(got)
        assert ann["area"] == got.sum()
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


@pytest.mark.django_db
def test_accepted_filter_leaves_out_pending_pseudo_labels(tmp_path):
    w, _, pseudo = _world()
    accepted = _coco(_zip(_run(w, format="coco", filter="accepted")), tmp_path)
    assert pseudo.id not in accepted.getAnnIds() and len(accepted.getAnnIds()) == 4
    Job.objects.all().delete()
    everything = _coco(_zip(_run(w, format="coco", filter="all")), tmp_path)
    assert pseudo.id in everything.getAnnIds()
    # VOC obeys the filter too: the other image shows only its manual box.
    Job.objects.all().delete()
    zf = _zip(_run(w, format="voc", filter="accepted"))
    stem = safe_stem(w.other_image.id, w.other_image.original_name)
    objects = np.array(PILImage.open(io.BytesIO(zf.read(f"SegmentationObject/{stem}.png"))))
    assert set(np.unique(objects)) == {0, 1}


def _expected_maps(image, classes_of: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Paint in (z_order, id) order, independently of the exporter."""
    cls = np.zeros((image.height, image.width), np.uint8)
    obj = np.zeros_like(cls)
    for k, inst in enumerate(
        Instance.objects.filter(image=image).order_by("z_order", "id"), start=1
    ):
        m = rle.decode(inst.mask)
        cls[m], obj[m] = classes_of[inst.label_id], k
    return cls, obj


@pytest.mark.django_db
def test_voc_pngs_decode_back_to_the_masks_with_later_z_order_on_top():
    w, cat, _ = _world()
    zf = _zip(_run(w, format="voc", filter="all"))
    classes_of = {w.label.id: 1, cat.id: 2}
    # one image set, listed for segmentation and detection alike: each image once
    stems = zf.read("ImageSets/Segmentation/train.txt").decode().split()
    assert stems == zf.read("ImageSets/Main/train.txt").decode().split()
    assert len(stems) == 2
    assert sorted(n for n in zf.namelist() if n.startswith("ImageSets/")) == [
        "ImageSets/Main/train.txt",
        "ImageSets/Segmentation/train.txt",
    ]
    for image in (w.assigned_image, w.other_image):
        stem = safe_stem(image.id, image.original_name)
        assert stem in stems
        cls_png = PILImage.open(io.BytesIO(zf.read(f"SegmentationClass/{stem}.png")))
        obj_png = PILImage.open(io.BytesIO(zf.read(f"SegmentationObject/{stem}.png")))
        assert cls_png.mode == obj_png.mode == "P"
        palette = np.array(cls_png.getpalette()[:768], np.uint8).reshape(-1, 3)
        assert np.array_equal(palette, PALETTE)
        assert tuple(PALETTE[1]) == (128, 0, 0) and tuple(PALETTE[255]) == (224, 224, 192)
        want_cls, want_obj = _expected_maps(image, classes_of)
        assert np.array_equal(np.array(cls_png), want_cls)
        assert np.array_equal(np.array(obj_png), want_obj)
        jpeg = PILImage.open(io.BytesIO(zf.read(f"JPEGImages/{stem}.jpg")))
        assert jpeg.format == "JPEG" and jpeg.size == (image.width, image.height)
        root = ET.fromstring(zf.read(f"Annotations/{stem}.xml"))
        objects = root.findall("object")
        insts = list(Instance.objects.filter(image=image).order_by("z_order", "id"))
        assert len(objects) == len(insts)
        for obj, inst in zip(objects, insts, strict=True):
            x, y, bw, bh = inst.bbox
            box = [int(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")]
            assert box == [int(x) + 1, int(y) + 1, int(x + bw), int(y + bh)]
            assert obj.find("name").text == ("cat" if inst.label_id == cat.id else "bird")
            assert obj.find("difficult").text == "0" and obj.find("truncated").text == "0"
    # the overlap really happened, and the cat (later) won it
    want_cls, _ = _expected_maps(w.assigned_image, classes_of)
    bird_box = rle.decode(w.instance.mask)
    assert (want_cls[bird_box] == 2).any() and (want_cls[bird_box] == 1).any()
    assert zf.read("labelmap.txt").decode().splitlines()[1:] == [
        "background:0,0,0::",
        "bird:128,0,0::",
        "cat:0,128,0::",
    ]


@pytest.mark.django_db
def test_voc_void_border_marks_pixels_near_another_object():
    w, cat, _ = _world()
    zf = _zip(_run(w, format="voc", filter="all", void_border=2))
    image = w.assigned_image
    stem = safe_stem(image.id, image.original_name)
    cls = np.array(PILImage.open(io.BytesIO(zf.read(f"SegmentationClass/{stem}.png"))))
    obj = np.array(PILImage.open(io.BytesIO(zf.read(f"SegmentationObject/{stem}.png"))))
    want_cls, want_obj = _expected_maps(image, {w.label.id: 1, cat.id: 2})
    h, wd = want_obj.shape
    near = np.zeros_like(want_obj, bool)  # brute force: another value within Chebyshev 2
    for y in range(h):
        for x in range(wd):
            win = want_obj[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
            near[y, x] = (win != want_obj[y, x]).any()
    assert np.array_equal(cls == VOID, near) and np.array_equal(obj == VOID, near)
    assert np.array_equal(cls[~near], want_cls[~near]) and np.array_equal(
        obj[~near], want_obj[~near]
    )


def test_safe_stem_and_arcname():
    assert safe_stem(7, "../evil.png") == "7_evil"
    assert safe_stem(8, "..\\..\\x y.tif") == "8_x_y"
    assert safe_stem(9, "...") == "9"
    assert safe_stem(10, ".hidden") == "10_hidden"
    for bad in ("../x", "/etc/passwd", "a/../b", "a\\b", "a//b"):
        with pytest.raises(ValueError):
            arcname(bad)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo"])
def test_hostile_image_names_stay_inside_the_zip_root(fmt, tmp_path):
    w, _, _ = _world()
    type(w.assigned_image).objects.filter(pk=w.assigned_image.pk).update(
        original_name="../evil.png"
    )
    type(w.other_image).objects.filter(pk=w.other_image.pk).update(original_name="/abs/..\\x.png")
    zf = _zip(_run(w, format=fmt, filter="all"))
    for name in zf.namelist():
        parts = name.split("/")
        assert not name.startswith("/") and "\\" not in name and ".." not in parts, name
    out = tmp_path / "x"
    zf.extractall(out)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.django_db
def test_a_cancelled_export_stops_and_leaves_no_zip(monkeypatch):
    w, _, _ = _world()
    monkeypatch.setattr("annotation.exports.services.CHUNK", 1)
    original = JobContext.save_progress
    calls = []

    def cancel_then_save(self, done, total, cursor):
        calls.append(done)
        Job.objects.filter(pk=self.job_id).update(cancel_requested=True)
        original(self, done, total, cursor)

    monkeypatch.setattr(JobContext, "save_progress", cancel_then_save)
    job = _run(w, format="coco", filter="all")
    assert job.state == "cancelled" and calls == [1]  # stopped after the first of two chunks
    assert job.result_file == "" and job.result == {}
    folder = storage.media_path(f"exports/{w.project.id}")
    assert list(folder.glob("*")) == []


@pytest.mark.django_db
def test_bad_parameters_fail_the_job_with_the_reason():
    w = make_world()
    job = _run(w, format="darknet")
    assert job.state == "failed" and "format must be one of" in job.error
    job2 = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="export", params={"colour": 1}
    )
    assert job_execute(job2.id) == "failed"
    assert "unknown export parameters" in Job.objects.get(pk=job2.id).error


@pytest.mark.django_db(transaction=True)
def test_export_job_on_a_real_worker_then_download(celery_worker_proc):
    import time

    from rest_framework.test import APIClient

    w, _, _ = _world()
    client = APIClient()
    client.force_login(w.users["manager"])
    response = client.post(
        f"/api/projects/{w.project.id}/jobs/",
        {
            "dataset_id": w.dataset.id,
            "kind": "export",
            "params": {"format": "voc", "void_border": 1},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job_id).state not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    assert job.state == "succeeded", job.error
    assert (job.done, job.total) == (2, 2)
    download = client.get(f"/api/jobs/{job_id}/download")
    assert download.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert "labelmap.txt" in zf.namelist()
    annotator = APIClient()
    annotator.force_login(w.users["annotator"])
    assert annotator.get(f"/api/jobs/{job_id}/download").status_code in (403, 404)
    assert json.loads(json.dumps(job.result))["images"] == 2
