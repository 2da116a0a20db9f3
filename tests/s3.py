"""A real S3-compatible server for the tests: ``moto`` in server mode, as its own process on
127.0.0.1, and fixtures that point the media store at it.

``s3_server`` (session): starts ``python -m moto.server`` on a free port, waits until it
answers, creates the bucket with boto3, and stops the process by its pid at the end.
``s3_media`` (function): ``STORAGES["default"]`` becomes django-storages' S3 backend on that
bucket under a prefix of its own (each test sees an empty store) and the media cache a folder
of the test's own.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "maskwright-tests"
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


@dataclass
class S3Server:
    endpoint: str
    pid: int

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
        )

    def require_credentials(self, on: bool) -> None:
        """Make the server check access keys (it knows none, so every key is refused) or not."""
        count = b"0" if on else b"inf"
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=count,
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
        )
        urllib.request.urlopen(request, timeout=10).read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def storage_options(endpoint: str, prefix: str, **overrides: object) -> dict[str, object]:
    """What settings/base.py builds from MASKWRIGHT_S3_* for this server (one quick attempt
    per call, so that a dead endpoint fails fast)."""
    from config.settings.base import s3_client_config

    return {
        "endpoint_url": endpoint,
        "bucket_name": BUCKET,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "region_name": "us-east-1",
        "location": prefix,
        "file_overwrite": True,
        "default_acl": None,
        "client_config": s3_client_config("path", 2, 1),
        **overrides,
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    from benchmarks.storage import moto_process

    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_process(log) as (endpoint, pid):
        server = S3Server(endpoint, pid)
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@dataclass
class S3Media:
    server: S3Server
    prefix: str
    cache_dir: Path

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"

    def get(self, relative: str) -> bytes:
        reply = self.server.client().get_object(Bucket=BUCKET, Key=self.key(relative))
        return bytes(reply["Body"].read())

    def stored(self) -> set[str]:
        pages = self.server.client().get_paginator("list_objects_v2")
        found: set[str] = set()
        for page in pages.paginate(Bucket=BUCKET, Prefix=self.prefix + "/"):
            found |= {o["Key"][len(self.prefix) + 1 :] for o in page.get("Contents", [])}
        return found


@pytest.fixture
def s3_media(s3_server: S3Server, settings, tmp_path: Path) -> S3Media:
    """The media store on the test S3 server under a prefix of this test's own."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": storage_options(s3_server.endpoint, prefix),
        },
    }
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MEDIA_CACHE_DIR": str(tmp_path / "cache")}
    return S3Media(s3_server, prefix, tmp_path / "cache")
