"""Uploads that declare more than they carry: COCO sizes, inflating archives, pixel limits."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from pycocotools import mask as mask_utils
from rest_framework.test import APIClient

from annotation.common import rle
from annotation.datasets.models import Image
from annotation.labeling.models import Instance
from tests.factories import make_image_bytes, make_world

REPO = Path(__file__).resolve().parents[3]
W, H = 64, 48


def _named(data: bytes, name: str) -> io.BytesIO:
    fh = io.BytesIO(data)
    fh.name = name
    return fh


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _huge_rle(side: int) -> dict:
    """A valid compressed RLE of an empty ``side × side`` mask, made without drawing it."""
    coco = mask_utils.frPyObjects({"size": [side, side], "counts": [side * side]}, side, side)
    return {"size": [side, side], "counts": coco["counts"].decode()}


def _coco(width: int, height: int, segmentation, file_name: str = "one.png") -> bytes:
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}
            ],
        }
    ).encode()


@pytest.fixture
def manager():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["manager"])
    return w, client


@pytest.fixture
def no_decode(monkeypatch, manager):
    """Drawing a whole mask is what blew up memory: make it fail the test instead."""

    def refuse(*args, **kwargs):
        raise AssertionError("a mask was decoded to pixels during import")

    monkeypatch.setattr(rle.mask_utils, "decode", refuse)


# -- COCO sizes ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_coco_declaring_a_huge_image_is_refused_before_anything(manager, no_decode):
    """The reported 245-byte file: 40000×40000 and an RLE of that size."""
    w, client = manager
    coco = _coco(40000, 40000, {"size": [40000, 40000], "counts": "0"})
    images, instances = Image.objects.count(), Instance.objects.count()
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [_named(make_image_bytes(W, H, seed=501), "one.png")],
            "coco": _named(coco, "instances.json"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "40000×40000 is more than the 100,000,000 pixels" in response.json()["error"]["message"]
    assert (Image.objects.count(), Instance.objects.count()) == (images, instances)


def _parse_in_child(coco: bytes, tmp_path: Path, max_pixels: int) -> subprocess.CompletedProcess:
    path = tmp_path / "coco.json"
    path.write_bytes(coco)
    code = f"""
import django
django.setup()
from annotation.datasets.coco_import import CocoError, coco_parse
try:
    plan = coco_parse(open({str(path)!r}, "rb"))
    print("parsed", len(plan.annotations))
except CocoError as exc:
    print("refused", exc)
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "OPENBLAS_NUM_THREADS": "1",
        "MASKWRIGHT_MAX_IMAGE_PIXELS": str(max_pixels),
        "MASKWRIGHT_TEST_MEDIA": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "platform")]),
    }

    def limit() -> None:  # 1 GiB more than the interpreter needs; a 40000² mask is 1.6 GB
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )


def test_parsing_never_draws_a_declared_mask_even_when_the_limit_allows_it(tmp_path):
    """With the pixel limit raised, a valid 40000×40000 RLE is checked from its runs alone:
    the parse stays far below the 1.6 GB the mask would take (the child has 2 GiB in all)."""
    done = _parse_in_child(_coco(40000, 40000, _huge_rle(40000)), tmp_path, 2_000_000_000)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("parsed 1"), done.stdout[-2000:]


@pytest.mark.django_db
def test_segmentations_are_converted_at_the_stored_size_one_at_a_time(
    manager, no_decode, monkeypatch
):
    w, client = manager
    calls = []
    original = rle.from_segmentation

    def spy(segmentation, height, width, **kwargs):
        calls.append((height, width))
        return original(segmentation, height, width, **kwargs)

    monkeypatch.setattr(rle, "from_segmentation", spy)
    box = [[10, 5, 30, 5, 30, 20, 10, 20]]
    coco = json.dumps(
        {
            "images": [
                {"id": 1, "file_name": "one.png", "width": W, "height": H},
                {"id": 2, "file_name": "two.png", "width": 640, "height": 480},  # not its size
            ],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "segmentation": box},
                {
                    "id": 2,
                    "image_id": 1,
                    "category_id": 1,
                    "segmentation": {"size": [H, W], "counts": [H * W]},
                },
                {
                    "id": 3,
                    "image_id": 2,
                    "category_id": 1,
                    "segmentation": {"size": [480, 640], "counts": [480 * 640]},
                },
            ],
        }
    ).encode()
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [
                _named(make_image_bytes(W, H, seed=502), "one.png"),
                _named(make_image_bytes(W, H, seed=503), "two.png"),
            ],
            "coco": _named(coco, "instances.json"),
        },
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    summary = response.json()["coco"]
    assert summary["instances_created"] == 2 and summary["annotations_skipped"] == 1
    assert "640×480" in " ".join(summary["warnings"])
    assert calls == [(H, W), (H, W)]  # never the 640×480 the file claimed for two.png


@pytest.mark.django_db
def test_coco_polygon_far_outside_the_image_never_reaches_pycocotools(manager, monkeypatch):
    """The polygon that segfaulted the web process through the mask API, by import."""
    w, client = manager

    def refuse(*args, **kwargs):
        raise AssertionError("unchecked input reached pycocotools")

    for name in ("frPyObjects", "merge", "decode"):
        monkeypatch.setattr(rle.mask_utils, name, refuse)
    coco = _coco(W, H, [[0, 0, 4e8, 0, 4e8, 4e8, 0, 4e8]])
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [_named(make_image_bytes(W, H, seed=510), "one.png")],
            "coco": _named(coco, "instances.json"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "a polygon vertex lies outside the image" in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("score", ["NaN", "Infinity", "1e999"])
def test_non_finite_scores_are_refused(manager, score):
    w, client = manager
    coco = _coco(W, H, [[10, 5, 30, 5, 30, 20]])
    coco = coco.replace(b'"segmentation"', f'"score": {score}, "segmentation"'.encode())
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [_named(make_image_bytes(W, H, seed=504), "one.png")],
            "coco": _named(coco, "instances.json"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "score must be a finite number" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_deeply_nested_coco_is_refused(manager):
    w, client = manager
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [], "coco": _named(b"[" * 100_000, "instances.json")},
        format="multipart",
    )
    assert (
        response.status_code == 400 and "nested too deeply" in response.json()["error"]["message"]
    )


# -- archives ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_coco_json_in_a_zip_is_held_to_the_archive_limits(manager, settings):
    w, client = manager
    images = Image.objects.count()
    # 20 MiB of JSON whitespace deflates ~1000:1, far above the 200:1 a member may have
    padded = _coco(W, H, [[10, 5, 30, 5, 30, 20]]) + b" " * (20 * 2**20)
    archive = _zip(
        {"one.png": make_image_bytes(W, H, seed=505), "annotations/instances.json": padded}
    )
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [_named(archive, "a.zip")]},
        format="multipart",
    )
    assert response.status_code == 400
    assert (
        "annotations/instances.json: zip bomb: compression ratio"
        in response.json()["error"]["message"]
    )
    # and a json above the configured cap is refused by its declared size, unread
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_COCO_JSON_BYTES": 1000}
    padded = _coco(W, H, [[1, 1, 5, 1, 5, 5]]) + b" " * 2000
    archive = _zip({"one.png": make_image_bytes(W, H, seed=505), "instances.json": padded})
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [_named(archive, "b.zip")]},
        format="multipart",
    )
    assert response.status_code == 400
    assert (
        "b.zip/instances.json is larger than the limit of 1,000 bytes"
        in response.json()["error"]["message"]
    )
    assert Image.objects.count() == images  # refused before any image was stored


@pytest.mark.django_db
def test_small_members_cannot_inflate_past_the_archive_ratio(manager, settings, monkeypatch):
    """Members under 1 MiB skip the per-member ratio check; all together they may inflate to at
    most MAX_ZIP_RATIO × the archive's size (at least 1 MiB)."""
    from annotation.datasets import services

    w, client = manager
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_ZIP_RATIO": 50}
    members = {f"z{i:02d}.png": b"\x00" * (256 * 2**10) for i in range(40)}  # 10 MiB of zeros
    members["real.png"] = make_image_bytes(W, H, seed=506)
    archive = _zip(members)
    inflated = []
    original = services.ingest_stream

    def spy(dataset, name, stream):
        report = original(dataset, name, stream)
        inflated.append(stream.produced)
        return report

    monkeypatch.setattr(services, "ingest_stream", spy)
    body = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [_named(archive, "z.zip")]},
        format="multipart",
    ).json()
    allowance = max(2**20, 50 * len(archive))
    assert sum(inflated) <= allowance
    reasons = [f["reason"] for f in body["files"] if f["status"] == "refused"]
    assert sum("inflate to more than 50× the archive's size" in r for r in reasons) >= 30


# -- Pillow's pixel cap --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_configured_pixel_limit_wins_over_pillows_own(manager, settings, monkeypatch):
    w, client = manager
    assert PILImage.MAX_IMAGE_PIXELS == settings.MASKWRIGHT["MAX_IMAGE_PIXELS"]  # set at start-up
    # as Pillow's 89.5 M is to a larger setting
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    body = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [_named(make_image_bytes(100, 100, seed=507), "big.png")]},
        format="multipart",
    ).json()
    assert body["files"][0]["status"] == "accepted", body
    assert PILImage.MAX_IMAGE_PIXELS == 1000  # restored: the call does not change the process

    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_IMAGE_PIXELS": 1000}
    body = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [
                _named(make_image_bytes(40, 40, seed=508), "over.png"),  # 1600: above the limit
                # above twice: Pillow's error
                _named(make_image_bytes(100, 100, seed=509), "bomb.png"),
            ]
        },
        format="multipart",
    ).json()
    reasons = {f["name"]: f["reason"] for f in body["files"]}
    assert "exceeds the limit of 1,000" in reasons["over.png"]
    assert "decompression bomb" in reasons["bomb.png"] and "1,000 pixels" in reasons["bomb.png"]


@pytest.mark.django_db
def test_masks_are_written_in_batches_bounded_by_bytes(manager, monkeypatch):
    """300 masks at the run cap (2.85 MB of RLE each) in one INSERT overran PostgreSQL's 1 GiB
    statement memory (a 500 and no instances); batches are cut by RLE bytes as well as count."""
    from annotation.datasets import coco_apply

    w, client = manager
    monkeypatch.setattr(coco_apply, "BATCH_MASK_CHARS", 1)  # every mask overflows a batch
    inserts = []
    original = Instance.objects.bulk_create
    monkeypatch.setattr(
        Instance.objects,
        "bulk_create",
        lambda objs, *a, **k: inserts.append(len(objs)) or original(objs, *a, **k),
    )
    boxes = [[[x, 5, x + 8, 5, x + 8, 20, x, 20]] for x in (2, 14, 26, 38)]
    coco = json.dumps(
        {
            "images": [{"id": 1, "file_name": "one.png", "width": W, "height": H}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [
                {"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": box}
                for i, box in enumerate(boxes)
            ],
        }
    ).encode()
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {
            "files": [_named(make_image_bytes(W, H, seed=504), "one.png")],
            "coco": _named(coco, "instances.json"),
        },
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["coco"]["instances_created"] == 4
    assert [n for n in inserts if n] == [1, 1, 1, 1], inserts
