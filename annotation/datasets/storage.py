"""Where image files live: in the media store, addressed by dataset and content digest.

The store is Django's (``annotation.common.media``): a folder under MEDIA_ROOT by default, a
bucket with ``MASKWRIGHT_STORAGE=s3``. The names these helpers build and take are the same
either way; only :func:`media_path` is about the local folder (tests and the local store).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings

from annotation.common import media

_DIGEST = re.compile(r"[0-9a-f]{64}")


def media_path(relative: str) -> Path:
    """The file of ``relative`` under MEDIA_ROOT (meaningful for the local store only)."""
    return media.local_path(relative)


def stored_image_sha256(relative: str) -> str | None:
    """The sha256 of the bytes stored under image name ``relative`` as the database has it
    (``Image.file_sha256``; None when unknown, e.g. rows stored before it was recorded)."""
    from .models import Image

    if media.is_external(relative):  # an attached bucket's object (datasets.buckets)
        found = (
            Image.objects.filter(file=relative)
            .exclude(file_sha256="")
            .values_list("file_sha256", flat=True)
            .first()
        )
        return found if found and _DIGEST.fullmatch(found) else None
    # The name is datasets/<dataset id>/<xx>/<sha256>.<ext>: the unique (dataset, sha256)
    # index finds the row without a scan of every image's name.
    parts = relative.split("/")
    stem = parts[-1].split(".", 1)[0]
    if len(parts) != 4 or not parts[1].isdigit() or not _DIGEST.fullmatch(stem):
        return None
    found = (
        Image.objects.filter(dataset_id=int(parts[1]), sha256=stem, file=relative)
        .values_list("file_sha256", flat=True)
        .first()
    )
    return found if found and _DIGEST.fullmatch(found) else None


def read_rgb(relative: str) -> np.ndarray:
    """A stored (upright) image as a writable H×W×3 uint8 RGB array.

    From a remote store the bytes come through this process's cache, checked against the
    database's checksum, and never more than MAX_IMAGE_BYTES of them reach Pillow."""
    from PIL import Image as PILImage

    remote = media.is_external(relative) or not media.is_local()
    expected = stored_image_sha256(relative) if remote else None
    limit = settings.MASKWRIGHT["MAX_IMAGE_BYTES"]
    with (
        media.local_file(relative, sha256=expected, max_bytes=limit) as path,
        PILImage.open(path) as im,
    ):
        return np.array(im.convert("RGB"), dtype=np.uint8)


def image_relpath(dataset_id: int, sha256: str, ext: str) -> str:
    return f"datasets/{dataset_id}/{sha256[:2]}/{sha256}.{ext}"


def thumbnail_relpath(dataset_id: int, sha256: str) -> str:
    return f"thumbnails/{dataset_id}/{sha256[:2]}/{sha256}.jpg"


def scratch_file() -> tuple[int, Path]:
    """A temporary file on this machine's MEDIA_ROOT: with the local store the final move is
    a cheap rename; with a remote one it is the local copy that is uploaded."""
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="ingest-")
    return fd, Path(name)


def move_into_place(src: Path, relative: str) -> None:
    """Store the local file ``src`` under ``relative`` (``src`` is gone afterwards)."""
    media.put_file(src, relative, move=True)


def remove_quietly(*relatives: str) -> None:
    media.delete_quietly(*relatives)


def images_folder(names: list[str], folder: Path) -> Path:
    """A folder in which each stored image name of ``names`` is a readable file, for code that
    reads images by path (trainers given ``images_dir`` and COCO ``file_name``s): MEDIA_ROOT on
    the local store; on a remote one, or when some are objects of an attached bucket, ``folder``
    (the job's own), filled from the checked cache (files of the local store linked in)."""
    if media.is_local() and not any(media.is_external(name) for name in names):
        return Path(settings.MEDIA_ROOT)
    limit = settings.MASKWRIGHT["MAX_IMAGE_BYTES"]
    for name in names:
        if media.is_local() and not media.is_external(name):
            dest = folder / name
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(media.local_path(name), dest)
            continue
        media.copy_into(name, folder, sha256=stored_image_sha256(name), max_bytes=limit)
    return folder
