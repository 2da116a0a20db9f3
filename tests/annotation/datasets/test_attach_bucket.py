"""Attaching a bucket prefix to a dataset, against a real S3 server process (moto on
127.0.0.1): images registered in place (nothing copied but thumbnails and the upright copy of
an EXIF-rotated photo), non-images skipped and listed, pixels and files served from the
bucket, a re-sync adding only new objects, cancel and resume, and an object deleted behind
our back failing alone."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image as PILImage

from annotation.common import media
from annotation.datasets import attach as attach_module
from annotation.datasets import storage
from annotation.datasets.buckets import external_name
from annotation.datasets.models import Image
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from tests.annotation.datasets.buckets_world import (
    Bucket,
    add_source,
    admin,
    allow_the_test_server,  # noqa: F401 (autouse fixture)
    attach,
    fill,
)
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db


def _decoded(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _stored(relative: str) -> bytes:
    with media.open_stream(relative) as stream:
        return bytes(stream.read())


def _run_attach(client, dataset_id: int, source_id: int, prefix: str = "photos") -> Job:
    response = attach(client, dataset_id, source_id, prefix)
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job_execute(job_id)
    return Job.objects.get(pk=job_id)


@pytest.fixture(params=["local", "s3"])
def platform_store(request):
    """The platform's own store: the local folder, or a bucket of the same S3 server."""
    return request.getfixturevalue("s3_media") if request.param == "s3" else None


def test_a_prefix_is_attached_in_place_and_served(s3_server, platform_store):
    w = make_world()
    bucket = Bucket(s3_server)
    images = fill(bucket)
    owner = admin(w.users["owner"])
    source = add_source(owner, w.project.id, bucket).json()
    before_store = platform_store.stored() if platform_store else None

    job = _run_attach(owner, w.dataset.id, source["id"])
    assert job.state == "succeeded", job.error
    result = job.result
    assert result["registered"] == 4 and result["skipped"] == 3 and result["duplicates"] == 0
    assert result["listed"] == 7  # elsewhere/d.png is not under the prefix
    reasons = {o["key"]: o["reason"] for o in result["skipped_objects"]}
    assert set(reasons) == {"photos/notes.txt", "photos/broken.jpg", "photos/header.jpg"}
    assert "extension" in reasons["photos/notes.txt"]
    assert "corrupt" in reasons["photos/broken.jpg"]
    assert "corrupt image header" in reasons["photos/header.jpg"]
    assert job.done == job.total == 7

    rows = {
        r.source_path: r for r in Image.objects.filter(dataset=w.dataset, source_path__gt="")
        if r.source_path.startswith("bucket/")
    }  # fmt: skip
    assert set(rows) == {external_name(source["id"], k) for k in images}
    for key, data in images.items():
        row = rows[external_name(source["id"], key)]
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size_bytes == len(data)
        assert row.original_name == key.rsplit("/", 1)[-1]
        assert media.exists(row.thumbnail) and not media.is_external(row.thumbnail)
        with PILImage.open(io.BytesIO(_stored(row.thumbnail))) as thumb:
            assert thumb.format == "JPEG"
        if key == "photos/turned.jpg":
            # the upright copy lives in the platform's store; pixels come out upright
            assert not media.is_external(row.file) and (row.width, row.height) == (40, 100)
            rgb = storage.read_rgb(row.file)
            assert rgb.shape == (100, 40, 3) and rgb[:10].mean() > 200
            continue
        # the object is not copied: the row refers to it, and reads go to the bucket
        assert row.file == row.source_path and row.file_sha256 == row.sha256
        np.testing.assert_array_equal(storage.read_rgb(row.file), _decoded(data))
        assert (row.width, row.height) == _decoded(data).shape[1::-1]
        served = owner.get(f"/api/images/{row.id}/file")
        assert served.status_code == 200, served.content
        assert b"".join(served.streaming_content) == data
        assert owner.get(f"/api/images/{row.id}/thumbnail").status_code == 200

    # what the platform's store gained: thumbnails and the upright photo, no attached bytes
    upright = rows[external_name(source["id"], "photos/turned.jpg")]
    if platform_store is None:
        root = Path(settings.MEDIA_ROOT)
        assert not (root / "bucket").exists()
        stored_images = {p.name for p in (root / "datasets" / str(w.dataset.id)).rglob("*.*")}
        assert stored_images == {Path(upright.file).name} | {
            Path(i.file).name for i in (w.assigned_image, w.other_image)
        }
    else:
        gained = platform_store.stored() - before_store
        assert gained == {r.thumbnail for r in rows.values()} | {upright.file}
    assert bucket.keys() >= set(images)  # the bucket is untouched

    outsider = admin(w.users["outsider"])
    assert outsider.get(f"/api/images/{next(iter(rows.values())).id}/file").status_code == 404


@pytest.mark.parametrize("page", [1000, 2], ids=["one-page", "pages-of-2"])
def test_a_resync_adds_only_new_objects(s3_server, monkeypatch, page):
    # pages of 2 keys: the listing, the already-registered check and the progress run page
    # by page, and the result must not depend on where the pages break
    monkeypatch.setattr(attach_module, "PAGE", page)
    w = make_world()
    bucket = Bucket(s3_server)
    fill(bucket)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    assert _run_attach(owner, w.dataset.id, source_id).result["registered"] == 4
    first_ids = set(Image.objects.filter(dataset=w.dataset).values_list("id", flat=True))

    bucket.put("photos/new1.png", make_image_bytes(33, 22, seed=21))
    bucket.put("photos/z/new2.webp", make_image_bytes(22, 33, "WEBP", seed=22))
    # the same bytes as an image already attached: a duplicate, not a second row
    bucket.put("photos/copy-of-a.png", make_image_bytes(64, 48, "PNG", seed=11))
    again = _run_attach(owner, w.dataset.id, source_id)
    assert again.state == "succeeded", again.error
    r = again.result
    assert (r["registered"], r["already_registered"], r["duplicates"]) == (2, 4, 1)
    new = Image.objects.filter(dataset=w.dataset).exclude(id__in=first_ids)
    assert {i.original_name for i in new} == {"new1.png", "new2.webp"}
    assert Image.objects.filter(dataset=w.dataset).count() == len(first_ids) + 2
    assert again.done == again.total == r["listed"] == 10


def test_cancel_mid_way_then_resume(s3_server, monkeypatch):
    w = make_world()
    bucket = Bucket(s3_server)
    keys = [f"many/{i:02d}.png" for i in range(6)]
    for i, key in enumerate(keys):
        bucket.put(key, make_image_bytes(24, 16, seed=300 + i))
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    monkeypatch.setattr(attach_module, "CHUNK", 2)

    response = attach(owner, w.dataset.id, source_id, "many")
    job_id = response.json()["id"]
    real_register = attach_module._register
    calls = []

    def register_then_cancel(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:  # in the second chunk: someone presses Cancel
            Job.objects.filter(pk=job_id).update(cancel_requested=True)
        return real_register(*args, **kwargs)

    monkeypatch.setattr(attach_module, "_register", register_then_cancel)
    assert job_execute(job_id) == "cancelled"
    job = Job.objects.get(pk=job_id)
    assert job.cursor["last_key"] == keys[3] and job.done == 4
    attached = lambda: set(
        Image.objects.filter(source_path__startswith=f"bucket/{source_id}/").values_list(
            "original_name", flat=True
        )
    )
    assert attached() == {"00.png", "01.png", "02.png", "03.png"}  # the chunks done are kept

    # a launch again picks up the rest, and nothing twice
    monkeypatch.setattr(attach_module, "_register", real_register)
    again = _run_attach(owner, w.dataset.id, source_id, "many")
    assert again.state == "succeeded", again.error
    assert (again.result["registered"], again.result["already_registered"]) == (2, 4)
    assert attached() == {f"{i:02d}.png" for i in range(6)}


def test_a_resumed_run_lists_from_its_cursor(s3_server):
    """A worker that died after committing a chunk: the delivery again starts past the last
    key done (those before it are not read again)."""
    w = make_world()
    bucket = Bucket(s3_server)
    for i in range(5):
        bucket.put(f"r/{i}.png", make_image_bytes(16, 16, seed=400 + i))
    source_id = add_source(admin(w.users["owner"]), w.project.id, bucket).json()["id"]
    job = Job.objects.create(
        project=w.project,
        dataset=w.dataset,
        kind="attach",
        params={"bucket_id": source_id, "prefix": "r"},
        cursor={"last_key": "r/2.png", "done": 3, "registered": 3},
    )
    assert job_execute(job.id) == "succeeded"
    job.refresh_from_db()
    assert job.result["registered"] == 5 and job.done == job.total == 5
    names = Image.objects.filter(source_path__startswith=f"bucket/{source_id}/")
    assert set(names.values_list("original_name", flat=True)) == {"3.png", "4.png"}


def test_an_object_deleted_behind_our_back_fails_alone(s3_server):
    w = make_world()
    bucket = Bucket(s3_server)
    images = fill(bucket)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    _run_attach(owner, w.dataset.id, source_id)
    gone = Image.objects.get(file=external_name(source_id, "photos/a.png"))
    kept = Image.objects.get(file=external_name(source_id, "photos/b.jpg"))
    bucket.delete("photos/a.png")

    served = owner.get(f"/api/images/{gone.id}/file")
    assert served.status_code == 404 and "missing" in served.json()["error"]["message"]
    with pytest.raises(FileNotFoundError):
        storage.read_rgb(gone.file)
    assert owner.get(f"/api/images/{gone.id}/thumbnail").status_code == 200  # ours, kept
    # the rest of the dataset reads as before
    assert (
        b"".join(owner.get(f"/api/images/{kept.id}/file").streaming_content)
        == (images["photos/b.jpg"])
    )
    verify = Job.objects.create(project=w.project, dataset=w.dataset, kind="verify")
    assert job_execute(verify.id) == "succeeded"
    verify.refresh_from_db()
    assert [p["image_id"] for p in verify.result["problems"]] == [gone.id]
    assert Image.objects.filter(pk=gone.pk).exists()  # nothing dropped on its own


def test_deleting_the_dataset_leaves_the_bucket_alone(s3_server):
    w = make_world()
    bucket = Bucket(s3_server)
    images = fill(bucket)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    _run_attach(owner, w.dataset.id, source_id)
    thumbs = list(
        Image.objects.filter(source_path__startswith="bucket/").values_list("thumbnail", flat=True)
    )
    # the source cannot go while images are read from it
    assert owner.delete(f"/api/bucket-sources/{source_id}/").status_code == 409
    assert owner.delete(f"/api/datasets/{w.dataset.id}/").status_code == 204
    assert bucket.keys() >= set(images)  # not ours to delete
    assert not any(media.exists(t) for t in thumbs)  # ours are gone
    assert owner.delete(f"/api/bucket-sources/{source_id}/").status_code == 204


def test_attached_images_reach_exports_and_trainers(s3_server, tmp_path):
    """An export copies the object's bytes from the bucket; a trainer's images folder holds
    attached and uploaded images side by side (the local store is not enough for it then)."""
    import zipfile

    w = make_world()
    bucket = Bucket(s3_server)
    images = fill(bucket)
    owner = admin(w.users["owner"])
    source_id = add_source(owner, w.project.id, bucket).json()["id"]
    _run_attach(owner, w.dataset.id, source_id)
    attached = Image.objects.get(file=external_name(source_id, "photos/a.png"))

    export = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="export", params={"format": "coco"}
    )
    assert job_execute(export.id) == "succeeded"
    export.refresh_from_db()
    with media.open_stream(export.result_file) as stream, zipfile.ZipFile(stream) as zf:
        member = next(n for n in zf.namelist() if f"/{attached.id}_" in n)
        assert zf.read(member) == images["photos/a.png"]

    names = [attached.file, w.assigned_image.file]
    folder = storage.images_folder(names, tmp_path / "job")
    assert folder == tmp_path / "job"
    assert (folder / attached.file).read_bytes() == images["photos/a.png"]
    assert (folder / w.assigned_image.file).read_bytes() == _stored(w.assigned_image.file)
