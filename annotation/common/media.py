"""Every media file (images, thumbnails, exports, model files) through Django's storage API.

``STORAGES["default"]`` is chosen by ``MASKWRIGHT_STORAGE`` (settings/base.py): ``local`` is a
``FileSystemStorage`` under MEDIA_ROOT (the quick start), ``s3`` is django-storages' S3 backend
(AWS S3, MinIO, Ceph, R2, GCS in S3 mode). Names are relative paths such as
``datasets/3/ab/<sha256>.jpg``; nothing outside this module assumes they are files on this disk.

Code that needs a real file (Pillow on an image, ``torch.load`` on a model) asks
:func:`local_file`: on local disk it is the stored file itself; on a remote store it is an entry
of this process's bounded read-through cache (:mod:`.media_cache`), checked against the checksum
the database holds. Failures of the store itself (endpoint unreachable, bucket missing,
credentials refused) become :class:`StorageError`, a message naming the endpoint and bucket and
never the credentials.

A name may also refer to an object outside the platform's store: an image of a bucket attached
to a dataset (``bucket/<source id>/<key>``, see ``annotation.datasets.buckets``). The app that
owns such names registers a resolver for their first component (:func:`register_external`);
every read here (:func:`open_stream`, :func:`local_file`, :func:`exists`, :func:`size`) then
goes to that bucket with its own credentials, while writes and deletes refuse or skip them:
the platform never changes an object it does not own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage

from . import media_s3 as s3
from .exceptions import ApplicationError

_CHUNK = 1 << 20


class StorageError(ApplicationError):
    """The media store cannot be used (not a problem of one file)."""

    status_code = 503
    code = "storage_unavailable"


def backend() -> Storage:
    return default_storage


@dataclass(frozen=True)
class External:
    """Where an external name's object is: a storage of its own (an S3Storage whose location
    is empty), the object's key there, and ``where``, for messages (never the credentials)."""

    storage: Any
    key: str
    where: str
    # person-readable names of what to fix, by failure: "credentials", "endpoint", "bucket"
    fields: dict[str, str]


# the first component of a name (``bucket``) → the resolver of names under it
_EXTERNAL: dict[str, Callable[[str], External]] = {}


def register_external(first: str, resolver: Callable[[str], External]) -> None:
    """Let names ``<first>/...`` refer to objects that ``resolver(name)`` locates."""
    _EXTERNAL[first] = resolver


def is_external(relative: str) -> bool:
    return relative.split("/", 1)[0] in _EXTERNAL


def external(relative: str) -> External | None:
    """The object an external name refers to; None for a name of the platform's store.
    FileNotFoundError when the name's source is gone."""
    resolver = _EXTERNAL.get(relative.split("/", 1)[0])
    return resolver(relative) if resolver is not None else None


def is_local() -> bool:
    """True when the store is a folder of this machine (the cache is then bypassed)."""
    # default_storage is a LazyObject; isinstance sees the class of what it wraps
    return isinstance(default_storage, FileSystemStorage)


def describe() -> str:
    """Where media live, for messages and ``maskwright check``: never the credentials."""
    store = backend()
    if is_local():
        return f"local folder {Path(getattr(store, 'location', settings.MEDIA_ROOT))}"
    bucket = getattr(store, "bucket_name", "?")
    endpoint = getattr(store, "endpoint_url", None) or "AWS S3"
    prefix = getattr(store, "location", "")
    return f"bucket {bucket!r} at {endpoint}" + (f" under {prefix!r}" if prefix else "")


@contextmanager
def translated(action: str, source: External | None = None) -> Iterator[None]:
    """Turn a failure of the store (or of an external ``source``) during ``action`` into
    :class:`StorageError`.

    ``FileNotFoundError`` (one missing file) passes through unchanged: callers treat it as
    before, per file."""
    try:
        yield
    except (FileNotFoundError, StorageError):
        raise
    except Exception as exc:
        explained = s3.diagnose(exc, {**s3.SETTINGS, **(source.fields if source else {})})
        if explained is None:
            raise
        reason, part = explained
        where = source.where if source else f"media store: {describe()}"
        extra = {"part": part} if part else None
        raise StorageError(f"cannot {action}: {reason} — {where}", extra=extra) from None


def _get_object(client: Any, bucket: str, key: str, relative: str) -> BinaryIO:
    from botocore.exceptions import ClientError

    try:
        reply = client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise FileNotFoundError(f"{relative} is not in the media store") from None
        raise
    return reply["Body"]  # type: ignore[no-any-return]


def _key(relative: str) -> str:
    """The object key of a name on an S3 store (its location prefix included)."""
    from storages.utils import clean_name

    return backend()._normalize_name(clean_name(relative))  # type: ignore[attr-defined]


def local_path(relative: str) -> Path:
    """The file of ``relative`` under MEDIA_ROOT (meaningful for the local store only)."""
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    # Stored paths are written by us, but a row edited by hand must still not escape MEDIA_ROOT.
    if root not in path.parents:
        raise ValueError(f"{relative!r} is outside the media folder")
    return path


def open_stream(relative: str) -> BinaryIO:
    """A binary stream of a stored file, read as it is consumed (an S3 object is not spooled
    to disk first). FileNotFoundError if it is missing."""
    if (ext := external(relative)) is not None:
        with translated(f"read {relative}", ext):
            client = ext.storage.connection.meta.client
            return _get_object(client, ext.storage.bucket_name, ext.key, relative)
    if is_local():
        return open(local_path(relative), "rb")
    store = backend()
    with translated(f"read {relative}"):
        if hasattr(store, "bucket_name") and hasattr(store, "connection"):
            client = store.connection.meta.client
            return _get_object(client, store.bucket_name, _key(relative), relative)
        return store.open(relative, "rb")  # type: ignore[return-value]


def exists(relative: str) -> bool:
    if relative and (ext := external(relative)) is not None:
        with translated(f"look for {relative}", ext):
            return bool(ext.storage.exists(ext.key))
    with translated(f"look for {relative}"):
        return bool(relative) and backend().exists(relative)


def size(relative: str) -> int:
    if (ext := external(relative)) is not None:
        with translated(f"read the size of {relative}", ext):
            return int(ext.storage.size(ext.key))
    with translated(f"read the size of {relative}"):
        return int(backend().size(relative))


def put_file(source: Path, relative: str, *, move: bool = True) -> None:
    """Store the local file ``source`` under ``relative`` (replacing what is there: names are
    content addressed). On local disk a move is a rename on the same disk, as before; a copy
    when ``move`` is False (the caller still needs ``source``)."""
    _refuse_external(relative)
    if is_local():
        dest = local_path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.replace(source, dest)
        else:
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(source, part)
            os.replace(part, dest)
        return
    with translated(f"store {relative}"), open(source, "rb") as handle:
        if s3.put_direct(backend(), handle, relative, source.stat().st_size):
            saved = relative
        else:
            saved = backend().save(relative, File(handle, name=relative))
    if saved != relative:  # an overwrite-refusing backend: the name must stay ours
        raise StorageError(f"the media store renamed {relative} to {saved}; enable overwrite")
    if move:
        source.unlink(missing_ok=True)


def put_bytes(data: bytes, relative: str) -> None:
    """Store small bytes (a thumbnail) under ``relative``."""
    _refuse_external(relative)
    if is_local():
        dest = local_path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(data)
        os.replace(part, dest)
        return
    with translated(f"store {relative}"):
        if not s3.put_direct(backend(), data, relative, len(data)):
            backend().save(relative, ContentFile(data, name=relative))


def _refuse_external(relative: str) -> None:
    if is_external(relative):
        raise ValueError(f"{relative} is an object of an attached bucket; it is never written")


def delete_quietly(*relatives: str) -> None:
    """Remove stored files; a missing one is no error (the row went first). An external name
    is skipped: the object belongs to its bucket's owner, not to the platform."""
    for rel in relatives:
        if not rel or is_external(rel):
            continue
        if is_local():
            try:
                local_path(rel).unlink()
            except FileNotFoundError:
                pass
            continue
        with translated(f"delete {rel}"):
            backend().delete(rel)


@contextmanager
def local_file(
    relative: str,
    *,
    sha256: str | None = None,
    size_bytes: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[Path]:
    """A real file holding ``relative``'s bytes, valid inside the ``with`` block.

    Local store: the stored file (``FileNotFoundError`` if missing). Remote store: this
    process's cache entry, fetched if absent, refetched if it no longer matches ``sha256`` /
    ``size_bytes`` (what the database says of the stored bytes) or the checksum recorded when
    it was fetched; a fetch stops past ``max_bytes`` (ValueError) before anything decodes it.
    An external name is always read through the cache (its bucket is never this disk).
    """
    if is_local() and not is_external(relative):
        yield local_path(relative)
        return
    from .media_cache import process_cache

    cache = process_cache()
    # an external name's failures name its own source, not the platform's store
    with translated(f"fetch {relative}", external(relative)):
        path = cache.acquire(
            relative,
            lambda: open_stream(relative),
            sha256=sha256,
            size_bytes=size_bytes,
            max_bytes=max_bytes,
        )
    try:
        yield path
    finally:
        cache.release(relative)


def copy_into(
    relative: str,
    folder: Path,
    *,
    sha256: str | None = None,
    size_bytes: int | None = None,
    max_bytes: int | None = None,
) -> Path:
    """A file of ``relative`` that stays as long as ``folder`` does (a job's own folder, for
    code that reads files by path for a long while: trainers). The stored file itself on the
    local store; else ``folder/relative``, hard-linked from the checked cache entry (a copy
    across file systems), kept if already there."""
    if is_local() and not is_external(relative):
        return local_path(relative)
    dest = (folder / relative).resolve()
    if folder.resolve() not in dest.parents:
        raise ValueError(f"{relative!r} is outside {folder}")
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with local_file(relative, sha256=sha256, size_bytes=size_bytes, max_bytes=max_bytes) as src:
        part = dest.with_name(dest.name + f".{os.getpid()}.part")
        try:
            os.link(src, part)
        except OSError:
            shutil.copyfile(src, part)
        os.replace(part, dest)
    return dest


def check() -> str:
    """Write, read and delete a probe through the store; raises with a clear reason."""
    probe = ".maskwright-check"
    if is_local():
        root = Path(settings.MEDIA_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        (root / probe).write_text("ok")
        (root / probe).unlink()
        return str(root)
    store: Any = backend()
    with translated("use the media store"):
        if hasattr(store, "connection"):
            # a GET, not head_bucket: a HEAD's answer has no body, so no code that tells a
            # missing bucket from refused credentials
            store.connection.meta.client.list_objects_v2(
                Bucket=store.bucket_name, MaxKeys=1, Prefix=getattr(store, "location", "")
            )
        put_bytes(b"ok", probe)
        with open_stream(probe) as stream:
            if stream.read() != b"ok":
                raise StorageError(f"the probe read back differs — media store: {describe()}")
        delete_quietly(probe)
    return describe()
