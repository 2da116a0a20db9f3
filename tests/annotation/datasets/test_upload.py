"""Upload: formats, refusals with reasons, archive guards, duplicates, EXIF rotation."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage
from rest_framework.test import APIClient

from annotation.datasets import storage
from annotation.datasets.models import Image
from tests.factories import make_image_bytes, make_world

pytestmark = pytest.mark.django_db


def _upload(
    client: APIClient, dataset_id: int, files: list[tuple[str, bytes]], coco: bytes | None = None
):
    payload: dict = {"files": []}
    for name, data in files:
        fh = io.BytesIO(data)
        fh.name = name
        payload["files"].append(fh)
    if coco is not None:
        fh = io.BytesIO(coco)
        fh.name = "instances.json"
        payload["coco"] = fh
    return client.post(f"/api/datasets/{dataset_id}/upload/", payload, format="multipart")


@pytest.fixture
def owner_client():
    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    return w, client


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _by_name(body: dict) -> dict[str, dict]:
    return {f["name"]: f for f in body["files"]}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_each_accepted_format_is_stored_with_size_and_thumbnail(owner_client, fmt):
    w, client = owner_client
    body = _upload(
        client, w.dataset.id, [(f"a.{fmt.lower()}", make_image_bytes(80, 60, fmt, seed=107))]
    ).json()
    assert body["accepted"] == 1, body
    image = Image.objects.get(pk=body["files"][0]["image_id"])
    assert (image.width, image.height, image.format) == (80, 60, fmt)
    with PILImage.open(storage.media_path(image.file)) as stored:
        assert stored.size == (80, 60)
    with PILImage.open(storage.media_path(image.thumbnail)) as thumb:
        assert max(thumb.size) <= 256
    assert client.get(f"/api/images/{image.id}/file").status_code == 200


def test_bad_files_are_refused_with_reasons_and_the_rest_is_kept(owner_client, settings):
    w, client = owner_client
    good = make_image_bytes(seed=111)
    truncated = make_image_bytes(200, 200, "JPEG", seed=112)[:-600]
    gif = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(gif, "GIF")
    body = _upload(
        client,
        w.dataset.id,
        [
            ("good.png", good),
            ("random.jpg", b"\x00garbage" * 50),
            ("trunc.jpg", truncated),
            # a JPEG marker, then an APP segment whose length runs past the end of the file:
            # Pillow fails while reading the header ("Truncated File Read")
            ("header.jpg", b"\xff\xd8\xff\xe0 this is not a jpeg"),
            ("anim.gif", gif.getvalue()),
            ("again.png", good),
        ],
    ).json()
    files = _by_name(body)
    assert files["good.png"]["status"] == "accepted"
    assert "not an image" in files["random.jpg"]["reason"]
    assert "corrupt" in files["trunc.jpg"]["reason"] or "truncated" in files["trunc.jpg"]["reason"]
    assert "corrupt image header" in files["header.jpg"]["reason"]
    assert "GIF is not accepted" in files["anim.gif"]["reason"]
    assert "duplicate of image" in files["again.png"]["reason"]
    assert (body["accepted"], body["refused"]) == (1, 5)


def test_pixel_limit_refuses_bombs_before_decoding(owner_client, settings):
    w, client = owner_client
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_IMAGE_PIXELS": 100 * 100}
    # A 20000×20000 PNG of zeros is ~1 MB on the wire and 1.2 GB decoded.
    out = io.BytesIO()
    PILImage.new("L", (2000, 2000)).save(out, "PNG")
    body = _upload(
        client, w.dataset.id, [("bomb.png", out.getvalue()), ("ok.png", make_image_bytes(50, 50))]
    ).json()
    files = _by_name(body)
    assert "exceeds the limit" in files["bomb.png"]["reason"]
    assert files["ok.png"]["status"] == "accepted"


def test_pillow_decompression_bomb_is_refused(owner_client, settings):
    """Pillow's own check runs at the configured limit (see test_import_limits.py for the
    configured limit winning over Pillow's default)."""
    w, client = owner_client
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_IMAGE_PIXELS": 1000}
    body = _upload(client, w.dataset.id, [("big.png", make_image_bytes(100, 100))]).json()
    assert "decompression bomb" in body["files"][0]["reason"]
    assert "1,000 pixels" in body["files"][0]["reason"]


def test_exif_rotated_images_are_stored_upright(owner_client):
    w, client = owner_client
    arr = np.zeros((40, 100, 3), dtype=np.uint8)
    arr[:, :10] = 255  # a white band on the left of the sensor image
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "JPEG", exif=exif.tobytes(), quality=95)
    body = _upload(client, w.dataset.id, [("phone.jpg", out.getvalue())]).json()
    image = Image.objects.get(pk=body["files"][0]["image_id"])
    assert (image.width, image.height) == (40, 100)
    with PILImage.open(storage.media_path(image.file)) as stored:
        assert stored.size == (40, 100)
        assert stored.getexif().get(0x0112, 1) == 1
        px = np.asarray(stored.convert("L"))
    assert px[:10].mean() > 200 and px[-10:].mean() < 50  # the band is now on top


def test_zip_archive_with_unsafe_members(owner_client):
    w, client = owner_client
    archive = _zip(
        {
            "images/a.png": make_image_bytes(seed=101),
            "images/sub/b.jpg": make_image_bytes(fmt="JPEG", seed=102),
            "../evil.png": make_image_bytes(seed=103),
            "/abs.png": make_image_bytes(seed=104),
            "notes.txt": b"hello",
            "inner.zip": _zip({"c.png": make_image_bytes(seed=105)}),
            "__MACOSX/._a.png": b"junk",
        }
    )
    body = _upload(client, w.dataset.id, [("batch.zip", archive)]).json()
    files = _by_name(body)
    assert files["images/a.png"]["status"] == "accepted"
    assert files["images/sub/b.jpg"]["status"] == "accepted"
    assert "path traversal" in files["batch.zip/../evil.png"]["reason"]
    assert "path traversal" in files["batch.zip//abs.png"]["reason"]
    assert "not an image" in files["batch.zip/notes.txt"]["reason"]
    assert "nested archives" in files["batch.zip/inner.zip"]["reason"]
    assert not any("MACOSX" in name for name in files)
    # nothing was written outside the media folder
    root = storage.media_path("datasets")
    assert not (root.parent.parent / "evil.png").exists()


def test_zip_symlink_member_is_refused(owner_client):
    w, client = owner_client
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
        zf.writestr("real.png", make_image_bytes(seed=108))
    files = _by_name(_upload(client, w.dataset.id, [("l.zip", out.getvalue())]).json())
    assert "symbolic link" in files["l.zip/link.png"]["reason"]
    assert files["real.png"]["status"] == "accepted"


def test_zip_bomb_by_ratio_and_by_total(owner_client, settings):
    w, client = owner_client
    bomb = b"\x00" * (50 * 2**20)  # 50 MiB of zeros deflates ~1000:1
    archive = _zip({"bomb.bmp": bomb, "fine.png": make_image_bytes(seed=109)})
    files = _by_name(_upload(client, w.dataset.id, [("b.zip", archive)]).json())
    assert "compression ratio" in files["bomb.bmp"]["reason"]
    assert files["fine.png"]["status"] == "accepted"

    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MAX_ZIP_UNCOMPRESSED_BYTES": 20_000}
    members = {f"m{i}.png": make_image_bytes(64, 48, seed=20 + i) for i in (0, 1, 2)}  # ~9 KB each
    stored = zipfile.ZIP_STORED
    files = _by_name(_upload(client, w.dataset.id, [("t.zip", _zip(members, stored))]).json())
    statuses = [files[n]["status"] for n in ("m0.png", "m1.png", "m2.png")]
    assert statuses == ["accepted", "accepted", "refused"]
    assert "total uncompressed size limit" in files["m2.png"]["reason"]


def test_not_a_zip_and_empty_request(owner_client):
    w, client = owner_client
    body = _upload(client, w.dataset.id, [("fake.zip", b"PK\x03\x04 not really")]).json()
    assert body["refused"] == 1 and "not a readable zip" in body["files"][0]["reason"]
    response = client.post(f"/api/datasets/{w.dataset.id}/upload/", {}, format="multipart")
    assert response.status_code == 400 and "no files" in response.json()["error"]["message"]


def test_large_upload_is_spooled_to_disk_not_memory(owner_client, settings):
    """Django keeps at most FILE_UPLOAD_MAX_MEMORY_SIZE in memory; a 3 MB file goes to disk."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    w, client = owner_client
    seen = []
    from annotation.datasets import services

    original = services.ingest_stream

    def spy(dataset, name, stream):
        seen.append(type(stream))
        return original(dataset, name, stream)

    services.ingest_stream = spy
    try:
        big = make_image_bytes(1200, 1000, "BMP", seed=103)  # 3.6 MB
        assert _upload(client, w.dataset.id, [("big.bmp", big)]).json()["accepted"] == 1
    finally:
        services.ingest_stream = original
    assert seen == [TemporaryUploadedFile]


def test_a_coco_form_field_instead_of_a_file_is_refused_before_anything_is_stored(owner_client):
    w, client = owner_client
    before = Image.objects.filter(dataset=w.dataset).count()
    fh = io.BytesIO(make_image_bytes(seed=41))
    fh.name = "a.png"
    response = client.post(
        f"/api/datasets/{w.dataset.id}/upload/",
        {"files": [fh], "coco": '{"images": []}'},
        format="multipart",
    )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert "'coco'" in error["message"] and error["detail"] == {"field": "coco"}, error
    assert Image.objects.filter(dataset=w.dataset).count() == before
