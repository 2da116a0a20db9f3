"""Turning uploaded bytes into stored images, one file at a time.

Each file is streamed to a local scratch file while it is hashed, then checked
with Pillow (format, pixel count from the header before any pixel is decoded, a full decode to
catch truncation), stored upright and thumbnailed through the media store (local folder or
bucket, ``annotation.common.media``), and recorded in its own transaction. A
refused file yields a :class:`FileReport` with the reason; it never fails the files around it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from annotation.common import media

from . import storage
from .models import Dataset, Image

# Pillow format name -> the extension we store under. Anything else is refused.
ACCEPTED_FORMATS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_CHUNK = 1 << 20
_EXIF_ORIENTATION = 0x0112


@dataclass
class FileReport:
    """What happened to one uploaded file (or one archive member)."""

    name: str
    status: str  # "accepted" | "refused"
    reason: str = ""
    image_id: int | None = None  # the stored image: the new one, or the one it duplicates
    duplicate: bool = False  # refused because the dataset already holds these bytes

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Refused(Exception):
    """A file that cannot be stored; the message is the reason shown to the uploader."""


def _limits() -> dict[str, int]:
    return settings.MASKWRIGHT


def copy_to_scratch(stream: BinaryIO, max_bytes: int) -> tuple[Path, str, int]:
    """Stream ``stream`` to a scratch file, hashing as it goes; never holds more than 1 MiB.

    Returns (path, sha256 hex, size). Raises :class:`Refused` past ``max_bytes``.
    """
    fd, path = storage.scratch_file()
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Refused(f"larger than the {max_bytes // 2**20} MiB limit per image")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def use_configured_pixel_limit() -> None:
    """Make Pillow's own bomb check use ``MAX_IMAGE_PIXELS`` in this process (called once at
    start-up), so that every image ingest accepted also opens in exports and jobs."""
    PILImage.MAX_IMAGE_PIXELS = _limits()["MAX_IMAGE_PIXELS"]


@contextmanager
def _pillow_limit(max_pixels: int) -> Iterator[None]:
    # Pillow has its own cap (Image.MAX_IMAGE_PIXELS, 89.5 M by default: a warning above it,
    # an error above twice it) and it used to override ours: images the setting allowed were
    # refused as bombs. Set to ours, our header check below is the one that holds and names
    # the setting; Pillow's error fires only past twice the limit. Restored after, so a
    # setting changed at run time (tests) does not outlive its call.
    saved = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved


def _open_checked(path: Path) -> PILImage.Image:
    """Open, check format and size from the header, then decode every pixel."""
    max_pixels = _limits()["MAX_IMAGE_PIXELS"]
    with _pillow_limit(max_pixels), warnings.catch_warnings():
        # Between the limit and twice it Pillow only warns; the header check below refuses.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            img = PILImage.open(path)
        except PILImage.DecompressionBombError as exc:
            raise Refused(
                f"decompression bomb: the image exceeds the limit of {max_pixels:,} pixels"
                " more than twice over"
            ) from exc
        except UnidentifiedImageError as exc:
            raise Refused("not an image Pillow can read (corrupt or unknown format)") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            # a known format whose header is cut or broken (Pillow's plugins raise these
            # while reading the header, e.g. "Truncated File Read" for a JPEG's APP segment)
            raise Refused(f"corrupt image header: {exc}") from exc
    if img.format not in ACCEPTED_FORMATS:
        img.close()
        raise Refused(f"format {img.format} is not accepted (JPEG, PNG, BMP, TIFF, WebP are)")
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise Refused(
            f"{width}×{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}"
            " (decompression bomb?)"
        )
    if width == 0 or height == 0:
        img.close()
        raise Refused("image has no pixels")
    try:
        img.load()  # catches truncated and corrupt data that the header alone hides
    except (OSError, SyntaxError, ValueError) as exc:
        img.close()
        raise Refused(f"corrupt image data: {exc}") from exc
    return img


def thumbnail_bytes(img: PILImage.Image) -> bytes:
    """JPEG bytes of a thumbnail. Shrinks ``img`` in place (no copy: callers are done with it)."""
    size = _limits()["THUMBNAIL_SIZE"]
    thumb = img
    thumb.thumbnail((size, size), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    if thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class _Prepared:
    """A checked image ready to be stored: what its row will say, and the writes it needs
    (a local file to move in, or bytes), in the order they are made."""

    name: str
    rel: str
    thumb_rel: str
    width: int
    height: int
    sha256: str
    file_sha256: str
    fmt: str
    size: int
    writes: list[tuple[Path | bytes, str]]

    def store(self) -> None:
        """Make the writes; a scratch file given to a write is gone afterwards, either way."""
        try:
            for payload, relative in self.writes:
                if isinstance(payload, Path):
                    storage.move_into_place(payload, relative)
                else:
                    media.put_bytes(payload, relative)
        finally:
            self.discard()

    def discard(self) -> None:
        for payload, _ in self.writes:
            if isinstance(payload, Path):
                payload.unlink(missing_ok=True)


def ingest_stream(dataset: Dataset, name: str, stream: BinaryIO) -> FileReport:
    """Store one image from ``stream`` into ``dataset``; never raises for bad input."""
    step = _prepare_stream(dataset, name, stream)
    if isinstance(step, FileReport):
        return step
    step.store()
    return _register(dataset, step)


def _prepare_stream(dataset: Dataset, name: str, stream: BinaryIO) -> FileReport | _Prepared:
    try:
        scratch, sha256, size = copy_to_scratch(stream, _limits()["MAX_IMAGE_BYTES"])
    except Refused as exc:
        return FileReport(name, "refused", str(exc))
    return _prepare_owning(dataset, name, scratch, sha256, size)


def _prepare_owning(
    dataset: Dataset, name: str, scratch: Path, sha256: str, size: int
) -> FileReport | _Prepared:
    """:func:`_prepare`, removing ``scratch`` unless its writes took it over."""
    try:
        step = _prepare(dataset, name, scratch, sha256, size)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    if isinstance(step, FileReport) or all(payload != scratch for payload, _ in step.writes):
        scratch.unlink(missing_ok=True)
    return step


def _prepare(
    dataset: Dataset, name: str, scratch: Path, sha256: str, size: int
) -> FileReport | _Prepared:
    """Check the scratch file and compute what is stored (upright image, thumbnail); writes
    nothing. The returned writes own ``scratch`` (or an upright copy of it)."""
    existing = (
        Image.objects.filter(dataset=dataset, sha256=sha256).values_list("id", flat=True).first()
    )
    if existing:
        return _duplicate(name, existing)
    try:
        img = _open_checked(scratch)
    except Refused as exc:
        return FileReport(name, "refused", str(exc))
    with img:
        fmt = img.format or ""
        ext = ACCEPTED_FORMATS[fmt]
        rel = storage.image_relpath(dataset.id, sha256, ext)
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation not in (1, None):
            # Store upright: every consumer (browser canvas, models, exports) then agrees on
            # pixel coordinates without reading EXIF.
            upright = ImageOps.exif_transpose(img)
            save_kwargs = {"quality": 95} if fmt == "JPEG" else {}
            source, file_sha256 = _encode_rotated(upright, fmt, save_kwargs)
            img_for_thumb = upright
        else:
            source, file_sha256 = scratch, sha256
            img_for_thumb = img
        width, height = img_for_thumb.size
        thumb_rel = storage.thumbnail_relpath(dataset.id, sha256)
        try:
            thumb = thumbnail_bytes(img_for_thumb)
        except BaseException:
            source.unlink(missing_ok=True)
            raise
    return _Prepared(
        name=name,
        rel=rel,
        thumb_rel=thumb_rel,
        width=width,
        height=height,
        sha256=sha256,
        file_sha256=file_sha256,
        fmt=fmt,
        size=size,
        writes=[(source, rel), (thumb, thumb_rel)],
    )


def _register(dataset: Dataset, item: _Prepared) -> FileReport:
    """The row of an image whose files are stored, in its own transaction."""
    try:
        with transaction.atomic():
            row = Image.objects.create(
                dataset=dataset,
                file=item.rel,
                thumbnail=item.thumb_rel,
                original_name=base_name(item.name)[:500],
                source_path=item.name[:500],
                width=item.width,
                height=item.height,
                sha256=item.sha256,
                file_sha256=item.file_sha256,
                format=item.fmt,
                size_bytes=item.size,
            )
    except IntegrityError:
        # Another upload stored the same bytes between our check and our insert. The files on
        # disk are identical by construction, so they are left for that row.
        other = (
            Image.objects.filter(dataset=dataset, sha256=item.sha256)
            .values_list("id", flat=True)
            .first()
        )
        return _duplicate(item.name, other)
    return FileReport(item.name, "accepted", "", row.id)


def _encode_rotated(
    upright: PILImage.Image, fmt: str, save_kwargs: dict[str, int]
) -> tuple[Path, str]:
    """Encode the upright image to a scratch file: the file and its bytes' sha256."""
    fd, path = storage.scratch_file()
    os.close(fd)
    try:
        upright.save(path, fmt, **save_kwargs)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()


def _duplicate(name: str, image_id: int | None) -> FileReport:
    return FileReport(
        name, "refused", f"duplicate of image {image_id} (same sha256)", image_id, duplicate=True
    )


def base_name(path: str) -> str:
    """The last component of an uploaded path, whichever separator it was written with."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def looks_like_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS
