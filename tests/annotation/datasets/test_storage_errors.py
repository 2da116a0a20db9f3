"""A media store that cannot be used (wrong endpoint, missing bucket, refused credentials)
gives a clear error, naming the setting and never the secret: in ``maskwright check``, on an
upload, on a job; and it loses nothing already stored."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from annotation.cli.check import _storage
from annotation.common.media import StorageError
from annotation.datasets.models import Image
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from tests.factories import make_image_bytes, make_world
from tests.s3 import SECRET_KEY, free_port, storage_options

pytestmark = pytest.mark.django_db


def _point_at(settings, endpoint: str, prefix: str, **overrides: object) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": storage_options(endpoint, prefix, **overrides),
        },
    }


def _upload(client: APIClient, dataset_id: int, seed: int):
    fh = io.BytesIO(make_image_bytes(40, 30, "PNG", seed=seed))
    fh.name = f"new{seed}.png"
    return client.post(f"/api/datasets/{dataset_id}/upload/", {"files": [fh]}, format="multipart")


def test_the_storage_check_passes_on_a_working_bucket(s3_media):
    detail = _storage()
    assert "maskwright-tests" in detail and s3_media.server.endpoint in detail
    assert ".maskwright-check" not in s3_media.stored()  # the probe is cleaned up


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("endpoint", "the S3 endpoint cannot be reached (MASKWRIGHT_S3_ENDPOINT_URL)"),
        ("bucket", "the bucket does not exist (MASKWRIGHT_S3_BUCKET)"),
        ("credentials", "the S3 credentials were refused"),
    ],
)
def test_a_broken_store_is_a_clear_error_everywhere(s3_media, settings, case, message):
    w = make_world()  # stored while the store worked
    stored = s3_media.stored()
    assert stored
    if case == "endpoint":
        _point_at(settings, f"http://127.0.0.1:{free_port()}", s3_media.prefix)
    elif case == "bucket":
        _point_at(settings, s3_media.server.endpoint, s3_media.prefix, bucket_name="no-such")
    else:
        s3_media.server.require_credentials(True)
    try:
        with pytest.raises(StorageError) as caught:
            _storage()  # what `maskwright check` runs
        assert message in caught.value.message and SECRET_KEY not in caught.value.message
        assert "media store:" in caught.value.message

        owner = APIClient()
        owner.force_login(w.users["owner"])
        response = _upload(owner, w.dataset.id, seed=990)
        assert response.status_code == 503, response.content
        error = response.json()["error"]
        assert error["code"] == "storage_unavailable" and message in error["message"]
        assert SECRET_KEY not in response.content.decode()

        job = Job.objects.create(
            project=w.project, dataset=w.dataset, kind="export", params={"format": "coco"}
        )
        assert job_execute(job.id) == "failed"
        job.refresh_from_db()
        assert message in job.error and "Traceback" not in job.error

        served = owner.get(f"/api/images/{w.assigned_image.id}/file")
        assert served.status_code == 503 and message in served.json()["error"]["message"]
    finally:
        s3_media.server.require_credentials(False)
    # nothing already stored was lost, and no row points at a file that is not there
    assert stored <= s3_media.stored()
    assert set(Image.objects.filter(dataset=w.dataset).values_list("file", flat=True)) <= (
        s3_media.stored()
    )
