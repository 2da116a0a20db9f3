"""The read-through media cache: bounded in bytes (least recently used out, pinned entries
kept), and a copy that no longer matches its checksum is fetched again, never used; through
read_rgb on the S3 server process, the same."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from annotation.common import media
from annotation.common.media_cache import ChecksumMismatch, ReadThroughCache, process_cache
from annotation.datasets import storage
from tests.factories import make_world


class Store:
    """Named bytes that count how often they are read."""

    def __init__(self, **objects: bytes) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def opener(self, name: str):
        def open_() -> io.BytesIO:
            self.reads.append(name)
            return io.BytesIO(self.objects[name])

        return open_


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_cache_is_bounded_and_drops_the_least_recently_used(tmp_path):
    store = Store(**{f"f{i}.bin": bytes([i]) * 400 for i in range(4)})
    cache = ReadThroughCache(tmp_path / "c", max_bytes=1000)  # room for two entries
    for name in ("f0.bin", "f1.bin"):
        cache.acquire(name, store.opener(name))
        cache.release(name)
    cache.acquire("f0.bin", store.opener("f0.bin"))  # a hit: f0 is now the most recent
    cache.release("f0.bin")
    cache.acquire("f2.bin", store.opener("f2.bin"))
    cache.release("f2.bin")
    assert store.reads == ["f0.bin", "f1.bin", "f2.bin"]
    assert cache.total_bytes == 800 <= cache.max_bytes
    assert not (tmp_path / "c" / "f1.bin").exists()  # the least recently used went
    assert (tmp_path / "c" / "f0.bin").read_bytes() == store.objects["f0.bin"]
    # an entry in use is never evicted, even past the bound; it goes once released
    held = cache.acquire("f0.bin", store.opener("f0.bin"))
    for name in ("f1.bin", "f3.bin"):
        cache.acquire(name, store.opener(name))
        cache.release(name)
    assert held.read_bytes() == store.objects["f0.bin"]
    cache.release("f0.bin")
    cache.acquire("f2.bin", store.opener("f2.bin"))
    cache.release("f2.bin")
    assert cache.total_bytes <= cache.max_bytes and not held.exists()


def test_a_damaged_or_swapped_entry_is_fetched_again(tmp_path):
    good, other = b"the right bytes" * 10, b"another file" * 10
    store = Store(**{"a.bin": good, "b.bin": other})
    cache = ReadThroughCache(tmp_path / "c", max_bytes=10_000)
    path = cache.acquire("a.bin", store.opener("a.bin"), sha256=_sha(good))
    cache.release("a.bin")
    path.write_bytes(good[:-1] + b"X")  # bit rot
    again = cache.acquire("a.bin", store.opener("a.bin"), sha256=_sha(good))
    cache.release("a.bin")
    assert again.read_bytes() == good and store.reads == ["a.bin", "a.bin"]
    # swapped together with its sidecar: only the database's checksum can tell
    b = cache.acquire("b.bin", store.opener("b.bin"))
    cache.release("b.bin")
    path.write_bytes(b.read_bytes())
    path.with_name("a.bin.sha256").write_text(_sha(other))
    fixed = cache.acquire("a.bin", store.opener("a.bin"), sha256=_sha(good))
    cache.release("a.bin")
    assert fixed.read_bytes() == good and store.reads.count("a.bin") == 3
    # a known size catches a truncated copy too, when no digest is known
    path.write_bytes(good[:10])
    path.with_name("a.bin.sha256").write_text(_sha(good[:10]))
    cache.acquire("a.bin", store.opener("a.bin"), size_bytes=len(good))
    cache.release("a.bin")
    assert path.read_bytes() == good and store.reads.count("a.bin") == 4


def test_store_bytes_unlike_the_database_are_refused_and_not_cached(tmp_path):
    store = Store(**{"a.bin": b"changed behind our back"})
    cache = ReadThroughCache(tmp_path / "c", max_bytes=10_000)
    with pytest.raises(ChecksumMismatch, match="does not match the database's checksum"):
        cache.acquire("a.bin", store.opener("a.bin"), sha256=_sha(b"what we stored"))
    assert not (tmp_path / "c" / "a.bin").exists() and cache.total_bytes == 0
    with pytest.raises(ValueError, match="larger than the limit of 10 bytes"):
        cache.acquire("a.bin", store.opener("a.bin"), max_bytes=10)
    assert [p.name for p in (tmp_path / "c").iterdir()] == []  # no partial file left
    with pytest.raises(ValueError, match="not a cacheable"):
        cache.acquire("../escape.bin", store.opener("a.bin"))


@pytest.mark.django_db
def test_read_rgb_from_s3_fetches_once_and_refetches_a_damaged_copy(s3_media):
    w = make_world()
    image = w.assigned_image
    cache = process_cache()
    assert cache.folder == s3_media.cache_dir
    first = storage.read_rgb(image.file)
    fetched = cache.fetches
    np.testing.assert_array_equal(storage.read_rgb(image.file), first)
    assert cache.fetches == fetched  # a warm read comes from the cache
    (s3_media.cache_dir / image.file).write_bytes(b"garbage")
    np.testing.assert_array_equal(storage.read_rgb(image.file), first)
    assert cache.fetches == fetched + 1
    # the object replaced in the bucket behind our back: a clear error, not other pixels
    (s3_media.cache_dir / image.file).unlink()
    other = w.other_image
    s3_media.server.client().put_object(
        Bucket="maskwright-tests", Key=s3_media.key(image.file), Body=s3_media.get(other.file)
    )
    with pytest.raises(ChecksumMismatch, match=image.file):
        storage.read_rgb(image.file)
    assert not (s3_media.cache_dir / image.file).exists()


@pytest.mark.django_db
def test_the_local_store_bypasses_the_cache(settings, tmp_path):
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "MEDIA_CACHE_DIR": str(tmp_path / "cache")}
    w = make_world()
    assert media.is_local()
    with media.local_file(w.assigned_image.file) as path:
        assert path == storage.media_path(w.assigned_image.file)
    storage.read_rgb(w.assigned_image.file)
    assert not (tmp_path / "cache").exists()
