"""Media through the storage API: the same path (ingest → read_rgb → thumbnail → served file →
export download → model file load) on local disk and on a real S3 server process (moto on
127.0.0.1), with nothing of the S3 run left under MEDIA_ROOT."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image as PILImage
from rest_framework.test import APIClient

from annotation.common import media
from annotation.datasets import storage
from annotation.datasets.models import Image
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db


def _stored_bytes(relative: str) -> bytes:
    with media.open_stream(relative) as stream:
        return bytes(stream.read())


def _decoded(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _rotated_jpeg() -> bytes:
    arr = np.zeros((40, 100, 3), dtype=np.uint8)
    arr[:, :10] = 255  # a white band on the left of the sensor image
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def _upload(client: APIClient, dataset_id: int, name: str, data: bytes):
    fh = io.BytesIO(data)
    fh.name = name
    return client.post(f"/api/datasets/{dataset_id}/upload/", {"files": [fh]}, format="multipart")


def _media_files() -> set[str]:
    """Media files under MEDIA_ROOT (not the cache or scratch folders)."""
    root = Path(settings.MEDIA_ROOT)
    found = set()
    for top in ("datasets", "thumbnails", "exports", "models"):
        found |= {p.relative_to(root).as_posix() for p in (root / top).rglob("*") if p.is_file()}
    return found


@pytest.fixture(params=["local", "s3"])
def store(request):
    """The media store under test: the default local folder, or the S3 server."""
    if request.param == "s3":
        return request.getfixturevalue("s3_media")
    return None


def test_images_are_ingested_read_thumbnailed_and_served(store):
    w = make_world()
    owner = APIClient()
    owner.force_login(w.users["owner"])
    before = _media_files()
    png = make_image_bytes(72, 50, "PNG", seed=801)
    body = _upload(owner, w.dataset.id, "plain.png", png).json()
    rotated = _upload(owner, w.dataset.id, "phone.jpg", _rotated_jpeg()).json()
    plain = Image.objects.get(pk=body["files"][0]["image_id"])
    turned = Image.objects.get(pk=rotated["files"][0]["image_id"])

    # the stored bytes are where the store is, under the content-addressed names
    if store is not None:
        assert {plain.file, plain.thumbnail, turned.file, turned.thumbnail} <= store.stored()
        assert _media_files() == before  # nothing of these images on the local disk
        assert store.get(plain.file) == png
    else:
        assert storage.media_path(plain.file).read_bytes() == png
    # the database knows the digest of what is stored: the upload's, or the upright re-encode
    assert plain.file_sha256 == plain.sha256 == hashlib.sha256(png).hexdigest()
    upright = _stored_bytes(turned.file)
    assert turned.file_sha256 == hashlib.sha256(upright).hexdigest() != turned.sha256

    # read_rgb gives the pixels, upright
    np.testing.assert_array_equal(storage.read_rgb(plain.file), _decoded(png))
    turned_rgb = storage.read_rgb(turned.file)
    assert turned_rgb.shape == (100, 40, 3) and turned_rgb[:10].mean() > 200
    with PILImage.open(io.BytesIO(_stored_bytes(plain.thumbnail))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 256

    # served through the authenticated API, tenancy unchanged
    annotator = APIClient()
    annotator.force_login(w.users["annotator"])
    image = w.assigned_image
    response = annotator.get(f"/api/images/{image.id}/file")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == _stored_bytes(image.file)
    thumb = annotator.get(f"/api/images/{image.id}/thumbnail")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert b"".join(thumb.streaming_content) == _stored_bytes(image.thumbnail)
    outsider = APIClient()
    outsider.force_login(w.users["outsider"])
    assert outsider.get(f"/api/images/{image.id}/file").status_code == 404
    media.delete_quietly(image.file)
    missing = annotator.get(f"/api/images/{image.id}/file")
    assert missing.status_code == 404 and "verify" in missing.json()["error"]["message"]


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_an_export_is_stored_and_downloaded_through_the_api(store, fmt):
    w = make_world()
    before = _media_files()
    job = Job.objects.create(
        project=w.project, dataset=w.dataset, kind="export", params={"format": fmt}
    )
    job_execute(job.id)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    if store is not None:
        assert job.result_file in store.stored()
        assert _media_files() == before
    owner = APIClient()
    owner.force_login(w.users["owner"])
    response = owner.get(f"/api/jobs/{job.id}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="{Path(job.result_file).name}"' in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert len(data) == job.result["bytes"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        image = w.assigned_image
        if fmt == "coco":
            member = next(n for n in names if n.startswith("images/") and f"/{image.id}_" in n)
            assert zf.read(member) == _stored_bytes(image.file)  # copied as stored
        else:  # VOC re-encodes a PNG as JPEG: read through the (checked) local copy
            jpegs = [n for n in names if "JPEGImages/" in n]
            assert len(jpegs) == 2
            np.testing.assert_allclose(
                _decoded(zf.read(jpegs[0])).astype(float).mean(),
                storage.read_rgb(image.file).astype(float).mean(),
                atol=3,
            )
    annotator = APIClient()
    annotator.force_login(w.users["annotator"])
    assert annotator.get(f"/api/jobs/{job.id}/download").status_code in (403, 404)


def test_a_model_file_is_uploaded_imported_and_loaded_through_the_store(store, tmp_path):
    pytest.importorskip("torch")
    from annotation.modelstore.models import TrainedModel
    from annotation.modelstore.services import model_upload
    from annotation.segmentation.interactive.trained import LoadedModels
    from inference.methods.dynamite.checkpoint import save_model
    from inference.methods.dynamite.model import DynaMITe, DynamiteConfig

    w = make_world()
    before = _media_files()
    save_model(DynaMITe(DynamiteConfig.tiny()), tmp_path / "tiny.safetensors")
    with open(tmp_path / "tiny.safetensors", "rb") as f:
        model = model_upload(
            project_id=w.project.id,
            method="dynamite",
            name="tiny",
            upload=f,
            filename="tiny.safetensors",
            backbone=None,
            user=w.users["owner"],
        )
    assert job_execute(model.job_id) == "succeeded"
    model = TrainedModel.objects.get(pk=model.pk)
    assert model.state == "ready", model.error
    assert media.size(model.file) == model.size_bytes
    if store is not None:
        assert model.file in store.stored()
        assert _media_files() == before
    predictor = LoadedModels("cpu").new_predictor(model.id, "dynamite")
    assert predictor is not None
    if store is not None:  # loaded from this process's cache, which holds the checked copy
        cached = store.cache_dir / model.file
        assert cached.read_bytes() == store.get(model.file)


def test_a_job_folder_gets_the_images_a_trainer_reads_by_path(store, tmp_path):
    """Trainers read COCO ``file_name``s under an images folder: MEDIA_ROOT on local disk, the
    job's own folder (filled from the checked cache) with a bucket."""
    w = make_world()
    names = [w.assigned_image.file, w.other_image.file]
    folder = storage.images_folder(names, tmp_path / "job" / "media")
    if store is None:
        assert folder == Path(settings.MEDIA_ROOT)
    else:
        assert folder == tmp_path / "job" / "media"
        # it outlives the cache entry it came from
        for name in names:
            (store.cache_dir / name).unlink()
    for name in names:
        assert (folder / name).read_bytes() == _stored_bytes(name)
