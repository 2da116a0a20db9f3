"""Reading zip uploads member by member, refusing what is unsafe.

Guards, each reported per member so the rest of the archive still goes in:

* path traversal: absolute names, ``..`` components, drive letters, NUL bytes;
* symbolic links and nested archives;
* zip bombs: a member whose compression ratio is above ``MAX_ZIP_RATIO`` (checked from the
  header before reading, and against the bytes actually produced while reading); and, over all
  the members read from one archive whatever their size (the COCO json included), a running
  total of uncompressed bytes above ``MAX_ZIP_UNCOMPRESSED_BYTES`` or above ``MAX_ZIP_RATIO``
  times the archive's own size (:class:`InflateBudget`): 2,000 members of 1 MiB of zeros,
  each too small for the per-member check, used to inflate 2 GB from 2 MB;
* an archive with more than ``MAX_ZIP_MEMBERS`` entries is refused whole.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Self

from django.conf import settings

from .ingest import Refused

# Below this size a high ratio is harmless (a tiny, very compressible file).
_RATIO_FLOOR_BYTES = 1 << 20


class ArchiveError(Exception):
    """The archive as a whole cannot be read; nothing in it was stored."""


@dataclass
class Member:
    name: str  # the normalised member path, POSIX separators
    info: zipfile.ZipInfo


def safe_member_name(raw: str) -> str:
    """Normalise a member name or raise :class:`Refused` if it could escape the upload."""
    if "\x00" in raw:
        raise Refused("path traversal: NUL byte in member name")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise Refused("path traversal: absolute member path")
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        raise Refused("path traversal: '..' in member path")
    return "/".join(p for p in parts if p not in ("", "."))


def is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def is_hidden_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class LimitedReader:
    """A file-like wrapper that refuses to produce more than ``limit`` bytes.

    The zip header's sizes can lie; this is what actually stops a bomb.
    """

    def __init__(self, raw: BinaryIO, limit: int, why: str) -> None:
        self._raw = raw
        self._left = limit
        self._why = why
        self.produced = 0

    def read(self, n: int = -1) -> bytes:
        want = self._left + 1 if n < 0 else min(n, self._left + 1)
        data = self._raw.read(want)
        self.produced += len(data)
        self._left -= len(data)
        if self._left < 0:
            raise Refused(self._why)
        return data

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InflateBudget:
    """How many bytes the members of one archive may still inflate to, all members together."""

    def __init__(self, archive_bytes: int) -> None:
        limits = settings.MASKWRIGHT
        self.total_left = limits["MAX_ZIP_UNCOMPRESSED_BYTES"]
        self.ratio = limits["MAX_ZIP_RATIO"]
        # The floor lets a small archive of a few very compressible files through.
        self.ratio_left = max(_RATIO_FLOOR_BYTES, self.ratio * archive_bytes)

    @classmethod
    def for_stream(cls, stream: BinaryIO) -> InflateBudget:
        size = getattr(stream, "size", None)  # Django's uploaded files know it
        if size is None:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(0)
        return cls(size)

    def reserve(self, n: int) -> None:
        """Count ``n`` bytes about to be inflated, or raise :class:`Refused` if they do not fit."""
        if n > self.total_left:
            raise Refused("zip bomb: the archive exceeds its total uncompressed size limit")
        if n > self.ratio_left:
            raise Refused(
                f"zip bomb: the archive's members inflate to more than {self.ratio}× "
                "the archive's size"
            )
        self.total_left -= n
        self.ratio_left -= n


def open_archive(file: BinaryIO | str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"not a readable zip archive: {exc}") from exc
    limit = settings.MASKWRIGHT["MAX_ZIP_MEMBERS"]
    if len(archive.infolist()) > limit:
        archive.close()
        raise ArchiveError(f"archive has {len(archive.infolist())} entries; the limit is {limit}")
    return archive


def iter_members(
    archive: zipfile.ZipFile,
    on_refused: Callable[[str, str], None],
) -> Iterator[Member]:
    """Yield the members worth reading; report each unsafe one through ``on_refused``."""
    for info in archive.infolist():
        if info.is_dir():
            continue
        try:
            name = safe_member_name(info.filename)
        except Refused as exc:
            on_refused(info.filename, str(exc))
            continue
        if is_hidden_junk(name):
            continue  # OS metadata (__MACOSX/, .DS_Store): never an image, not worth a line
        if is_symlink(info):
            on_refused(name, "symbolic links are not followed")
            continue
        if name.lower().endswith((".zip", ".tar", ".gz", ".7z", ".rar")):
            on_refused(name, "nested archives are not unpacked")
            continue
        yield Member(name, info)


def open_member(archive: zipfile.ZipFile, member: Member, budget: InflateBudget) -> LimitedReader:
    """Open a member for streaming, refusing it if its header already says it is a bomb, or if
    the archive has already inflated all it may. The member's declared size is counted against
    ``budget`` whether or not it is then stored."""
    info = member.info
    max_ratio = settings.MASKWRIGHT["MAX_ZIP_RATIO"]
    if info.file_size > _RATIO_FLOOR_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > max_ratio:
            raise Refused(f"zip bomb: compression ratio {ratio:.0f}:1 exceeds {max_ratio}:1")
    limit = max(info.file_size, 0)
    budget.reserve(limit)
    try:
        raw = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise Refused(f"cannot read member: {exc}") from exc
    # Allow what the header declares (bounded by the ratio and the budget), never more.
    return LimitedReader(raw, limit, "zip bomb: member produced more bytes than it declared")
