"""Writes to an S3 store: one ``put_object`` of the storage's own client, with the key and
object parameters django-storages' ``save`` would give, and its path kept where it differs."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

from annotation.common import media
from tests.s3 import BUCKET

pytestmark = pytest.mark.django_db


def _head(s3_media, relative: str) -> dict:
    return s3_media.server.client().head_object(Bucket=BUCKET, Key=s3_media.key(relative))


def _options(settings, **overrides: object) -> None:
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], **overrides}},
    }


def _refuse_save(monkeypatch) -> list[str]:
    """Record every write that goes through the storage's own ``_save``."""
    saved: list[str] = []
    real = S3Storage._save

    def spy(self, name, content):
        saved.append(name)
        return real(self, name, content)

    monkeypatch.setattr(S3Storage, "_save", spy)
    return saved


def test_a_put_stores_what_the_storage_api_would(s3_media, settings, monkeypatch, tmp_path):
    _options(settings, object_parameters={"CacheControl": "max-age=60", "Metadata": {"k": "v"}})
    default_storage.save("ref/a.jpg", ContentFile(b"jpeg-bytes", name="ref/a.jpg"))
    saved = _refuse_save(monkeypatch)
    media.put_bytes(b"jpeg-bytes", "direct/a.jpg")
    source = tmp_path / "b.png"
    source.write_bytes(b"png-bytes")
    media.put_file(source, "direct/b.png")
    assert saved == []  # neither went through s3transfer
    assert not source.exists()  # moved: the scratch file is gone
    assert s3_media.get("direct/a.jpg") == b"jpeg-bytes"
    assert s3_media.get("direct/b.png") == b"png-bytes"
    ref, direct = _head(s3_media, "ref/a.jpg"), _head(s3_media, "direct/a.jpg")
    for field in ("ContentType", "CacheControl", "Metadata"):
        assert direct.get(field) == ref.get(field), field
    assert direct["ContentType"] == "image/jpeg"
    assert _head(s3_media, "direct/b.png")["ContentType"] == "image/png"


def test_a_gzipped_type_or_a_refused_overwrite_keeps_the_storage_path(
    s3_media, settings, monkeypatch
):
    _options(settings, gzip=True)
    saved = _refuse_save(monkeypatch)
    media.put_bytes(b"body { color: red }" * 50, "style/site.css")
    media.put_bytes(b"jpeg-bytes", "style/a.jpg")  # not a gzipped type: direct
    assert saved == ["style/site.css"]
    assert _head(s3_media, "style/site.css").get("ContentEncoding") == "gzip"
    _options(settings, gzip=False, file_overwrite=False)
    media.put_bytes(b"first", "fresh/new.jpg")  # nothing there: saved under its own name
    assert saved[-1] == "fresh/new.jpg"


def test_a_name_that_leaves_the_prefix_is_refused(s3_media):
    with pytest.raises(Exception, match="(?i)denied|detected path traversal"):
        media.put_bytes(b"x", "../outside.jpg")
    assert "outside.jpg" not in {k.rsplit("/", 1)[-1] for k in s3_media.stored()}
