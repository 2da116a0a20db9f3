"""A bucket of its own on the test S3 server (tests/s3.py) to attach to a dataset, with the
objects an attach meets: images, an EXIF-rotated photo, a text file and a corrupt JPEG."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image as PILImage
from rest_framework.test import APIClient

from tests.factories import make_image_bytes
from tests.s3 import S3Server

# what a project admin types into the source's form; never seen again outside the database
KEY_ID = "AKIAMASKWRIGHT7Q3Z"
SECRET = "wJalrXUtnFEMI-attach-secret-Zx81"


@pytest.fixture(autouse=True)
def allow_the_test_server(s3_server, settings):
    """The moto server listens on 127.0.0.1, which an empty endpoint list refuses (the host's
    own network): the server's admin names it, as one names a MinIO beside the platform.
    Autouse in each module that imports it."""
    settings.MASKWRIGHT_BUCKET_ENDPOINTS = [s3_server.endpoint, "aws"]


def rotated_jpeg() -> bytes:
    """A 100×40 sensor image whose EXIF says: turn it 90° clockwise to display (40×100)."""
    arr = np.zeros((40, 100, 3), dtype=np.uint8)
    arr[:, :10] = 255
    exif = PILImage.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def corrupt_jpeg() -> bytes:
    data = make_image_bytes(64, 48, "JPEG", seed=77)
    return data[: len(data) // 3]  # a truncated body: the header reads, the pixels do not


@dataclass
class Bucket:
    server: S3Server
    name: str = field(default_factory=lambda: f"attach-{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.server.client().create_bucket(Bucket=self.name)

    def put(self, key: str, data: bytes) -> bytes:
        self.server.client().put_object(Bucket=self.name, Key=key, Body=data)
        return data

    def delete(self, key: str) -> None:
        self.server.client().delete_object(Bucket=self.name, Key=key)

    def keys(self) -> set[str]:
        reply = self.server.client().list_objects_v2(Bucket=self.name)
        return {o["Key"] for o in reply.get("Contents", [])}


def fill(bucket: Bucket) -> dict[str, bytes]:
    """The objects of a typical prefix; returns key → bytes of the images an attach takes."""
    images = {
        "photos/a.png": bucket.put("photos/a.png", make_image_bytes(64, 48, "PNG", seed=11)),
        "photos/b.jpg": bucket.put("photos/b.jpg", make_image_bytes(50, 30, "JPEG", seed=12)),
        "photos/sub/c.png": bucket.put("photos/sub/c.png", make_image_bytes(20, 20, seed=13)),
        "photos/turned.jpg": bucket.put("photos/turned.jpg", rotated_jpeg()),
    }
    bucket.put("photos/notes.txt", b"not an image")
    bucket.put("photos/broken.jpg", corrupt_jpeg())
    # a header Pillow cannot read ("Truncated File Read"): found by walking the attach by hand
    bucket.put("photos/header.jpg", b"\xff\xd8\xff\xe0 this is not a jpeg")
    bucket.put("elsewhere/d.png", make_image_bytes(30, 30, seed=14))  # outside the prefix
    return images


def admin(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def add_source(client: APIClient, project_id: int, bucket: Bucket, /, **overrides: object):
    body = {
        "name": f"src-{bucket.name}",
        "endpoint_url": bucket.server.endpoint,
        "bucket": bucket.name,
        "region": "us-east-1",
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        **overrides,
    }
    return client.post(f"/api/projects/{project_id}/bucket-sources/", body, format="json")


def attach(client: APIClient, dataset_id: int, source_id: int, prefix: str = "photos"):
    body = {"bucket_id": source_id, "prefix": prefix}
    return client.post(f"/api/datasets/{dataset_id}/attach/", body, format="json")
