"""The ``attach`` job: register the images of a bucket prefix in a dataset without copying them.

Parameters: ``bucket_id`` (a :class:`~.models.BucketSource` of the job's project) and
``prefix`` (under the source's own prefix). The job lists the keys under the prefix, in the
bucket's (lexicographic) order, and for each new one streams the object once to a scratch file
(hashing it, bounded by ``MAX_IMAGE_BYTES``), checks it with Pillow as an upload is checked,
writes its thumbnail to the platform's store and records an ``Image`` whose ``file`` is
``bucket/<source id>/<key>`` (``buckets.external_name``): reads go to the bucket. An image
with an EXIF rotation is the exception: its upright re-encode is stored in the platform's
store, as an upload's is, so that every consumer agrees on pixel coordinates; its
``source_path`` still names the object.

Every registered image has ``source_path`` = its object's name, so a launch again (a re-sync)
skips the keys already registered and adds only new ones. Non-images (by extension, or refused
by Pillow) and duplicates of images already in the dataset are counted and listed (the first
200) in the result. The listing goes a page (1,000 keys) at a time after a counting pass, so
memory stays bounded on a prefix of millions of objects. The cursor is the last key done: a
resumed run (its worker died) lists from there; a cancelled job keeps what it registered, and a
launch again picks up the rest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from PIL import ImageOps

from annotation.common import media
from annotation.common.exceptions import ApplicationError
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import project_rows, register_id_param

from . import buckets, storage
from .ingest import (
    ACCEPTED_FORMATS,
    Refused,
    _open_checked,
    base_name,
    copy_to_scratch,
    looks_like_image_name,
    thumbnail_bytes,
)
from .models import BucketSource, Dataset, Image

CHUNK = 20  # objects per committed step: what a dead worker redoes at most
LISTED = 200  # skipped objects listed in the result
PAGE = 1000  # keys per listing request (S3's most); the job holds one page at a time
NAME_MAX = 500  # Image.file and Image.source_path hold bucket/<source id>/<key>
_EXIF_ORIENTATION = 0x0112

register_id_param("bucket", project_rows(BucketSource))


def validate(params: dict[str, Any], dataset: Any) -> None:
    """At launch: known parameters, a source of the project (checked by the id rule)."""
    unknown = set(params) - {"bucket_id", "prefix"}
    if unknown:
        raise ApplicationError(f"unknown attach parameters {sorted(unknown)}")
    if not params.get("bucket_id"):
        raise ApplicationError("bucket_id is required", extra={"field": "bucket_id"})
    if not isinstance(params.get("prefix", ""), str):
        raise ApplicationError("prefix must be a string", extra={"field": "prefix"})


def _pages(source: BucketSource, prefix: str, after: str) -> Iterator[list[tuple[str, int]]]:
    """(key, size) of the objects under ``prefix`` past ``after``, one listing page (at most
    :data:`PAGE`) at a time, in the bucket's order. Why pages: a prefix of millions of objects must
    not be held in memory at once."""
    client = buckets.client(source)
    pages = client.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {"Bucket": source.bucket, "Prefix": prefix}
    if after:
        kwargs["StartAfter"] = after
    with media.translated("list the bucket", buckets.external(source, prefix)):
        for page in pages.paginate(**kwargs, PaginationConfig={"PageSize": PAGE}):
            yield [(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", [])]


def _count(source: BucketSource, prefix: str, after: str) -> int:
    """How many objects :func:`_pages` will list (a listing pass that keeps only the count:
    one request per 1,000 keys), so that progress has a total from the start."""
    return sum(len(page) for page in _pages(source, prefix, after))


def _known(dataset: Dataset, names: list[str]) -> set[str]:
    """Which of ``names`` (external names) the dataset already has as a ``source_path``."""
    return set(
        Image.objects.filter(dataset=dataset, source_path__in=names).values_list(
            "source_path", flat=True
        )
    )


def _register(dataset: Dataset, source: BucketSource, key: str) -> tuple[str, str, int | None]:
    """Register one object; (outcome, reason, image id): outcome is ``registered``,
    ``duplicate`` or ``skipped``. A failure of the bucket itself raises ``StorageError``."""
    name = buckets.external_name(source.id, key)
    limit = settings.MASKWRIGHT["MAX_IMAGE_BYTES"]
    try:
        with media.open_stream(name) as stream:
            scratch, sha256, size = copy_to_scratch(stream, limit)
    except Refused as exc:
        return "skipped", str(exc), None
    except FileNotFoundError:
        return "skipped", "the object was deleted while the job ran", None
    try:
        existing = (
            Image.objects.filter(dataset=dataset, sha256=sha256)
            .values_list("id", flat=True)
            .first()
        )
        if existing:
            return "duplicate", f"duplicate of image {existing} (same sha256)", existing
        try:
            img = _open_checked(scratch)
        except Refused as exc:
            return "skipped", str(exc), None
        with img:
            fmt = img.format or ""
            file, file_sha256 = name, sha256
            if img.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None):
                upright = ImageOps.exif_transpose(img)
                file = storage.image_relpath(dataset.id, sha256, ACCEPTED_FORMATS[fmt])
                file_sha256 = _store_upright(upright, fmt, file)
                img = upright
            width, height = img.size
            thumb = storage.thumbnail_relpath(dataset.id, sha256)
            media.put_bytes(thumbnail_bytes(img), thumb)
    finally:
        scratch.unlink(missing_ok=True)
    try:
        with transaction.atomic():
            row = Image.objects.create(
                dataset=dataset,
                file=file,
                thumbnail=thumb,
                original_name=base_name(key)[:500],
                source_path=name[:500],
                width=width,
                height=height,
                sha256=sha256,
                file_sha256=file_sha256,
                format=fmt,
                size_bytes=size,
            )
    except IntegrityError:  # an upload stored the same bytes meanwhile
        other = Image.objects.filter(dataset=dataset, sha256=sha256).values_list("id", flat=True)
        return "duplicate", "duplicate of an image stored meanwhile", other.first()
    return "registered", "", row.id


def _store_upright(upright: Any, fmt: str, relative: str) -> str:
    """Store the upright re-encode in the platform's store; its sha256."""
    fd, path = storage.scratch_file()
    os.close(fd)
    try:
        upright.save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        storage.move_into_place(path, relative)
    finally:
        path.unlink(missing_ok=True)
    return digest


def _step(
    dataset: Dataset,
    source: BucketSource,
    key: str,
    size: int,
    known: set[str],
    state: dict[str, Any],
) -> None:
    """Do one listed object and count it in ``state`` (the job's cursor)."""
    state["done"] += 1
    state["last_key"] = key
    if key.endswith("/"):  # a "folder" marker, not an object of its own
        return
    if buckets.external_name(source.id, key) in known:
        state["already"] += 1
        return
    if not looks_like_image_name(key):
        outcome, reason = "skipped", "not an image (by its extension)"
    elif ".." in key.split("/"):  # the media cache refuses names that climb out
        outcome, reason = "skipped", "a key with a '..' component cannot be cached"
    elif len(buckets.external_name(source.id, key)) > NAME_MAX:
        outcome, reason = "skipped", f"a key longer than {NAME_MAX - 20} characters"
    elif size > settings.MASKWRIGHT["MAX_IMAGE_BYTES"]:
        limit = settings.MASKWRIGHT["MAX_IMAGE_BYTES"] // 2**20
        outcome, reason = "skipped", f"larger than the {limit} MiB limit per image"
    else:
        outcome, reason, _ = _register(dataset, source, key)
    if outcome == "registered":
        state["registered"] += 1
        return
    state["duplicates" if outcome == "duplicate" else "skipped"] += 1
    if len(state["skipped_objects"]) < LISTED:
        state["skipped_objects"].append({"key": key, "reason": reason[:300]})


@register_runner("attach", validate=validate, launchable=False)
def attach_bucket(ctx: JobContext) -> dict[str, Any]:
    """List the prefix, register each new image object; see the module's docstring."""
    source = BucketSource.objects.get(pk=int(ctx.params["bucket_id"]))
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    prefix = buckets.full_prefix(source, str(ctx.params.get("prefix", "")))
    cur = ctx.cursor
    state: dict[str, Any] = {
        "last_key": str(cur.get("last_key", "")),
        "done": int(cur.get("done", 0)),
        "registered": int(cur.get("registered", 0)),
        "already": int(cur.get("already", 0)),
        "duplicates": int(cur.get("duplicates", 0)),
        "skipped": int(cur.get("skipped", 0)),
        "skipped_objects": list(cur.get("skipped_objects", [])),
    }
    total = state["done"] + _count(source, prefix, state["last_key"])
    ctx.save_progress(state["done"], total, state)
    for page in _pages(source, prefix, state["last_key"]):
        known = _known(dataset, [buckets.external_name(source.id, key) for key, _ in page])
        for start in range(0, len(page), CHUNK):
            for key, size in page[start : start + CHUNK]:
                _step(dataset, source, key, size, known, state)
            # objects added behind the count still count: the total never falls below done
            total = max(total, state["done"])
            ctx.save_progress(state["done"], total, state)
    return {
        "bucket_id": source.id,
        "prefix": prefix,
        "listed": state["done"],
        "registered": state["registered"],
        "already_registered": state["already"],
        "duplicates": state["duplicates"],
        "skipped": state["skipped"],
        "skipped_objects": state["skipped_objects"],
    }
