"""The file-level steps of the media cache (:mod:`.media_cache`): checksums, advisory locks
that pin an entry across processes, the LRU time stamp and atomic sidecars."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from pathlib import Path

_CHUNK = 1 << 20
PART = ".part"


def digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` names the file open as ``fd`` (not one renamed over it, not gone)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def touch(fd: int) -> None:
    """Mark the file open as ``fd`` as just used: mtime order is the LRU order every process
    sees. Nanoseconds from the clock are finer than the kernel's file clock, so uses a moment
    apart stay in order."""
    now = time.time_ns()
    with contextlib.suppress(PermissionError):  # another user's file: the order is a hint only
        os.utime(fd, ns=(now, now))


def unused(path: Path) -> bool:
    """Whether no process holds the file at ``path`` (or there is none): an exclusive lock
    taken without waiting. Callers hold the folder lock exclusively, so the answer stands
    until they release it (a pin taken meanwhile finds its file renamed or gone, and retries)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str) -> None:
    """A sidecar that a concurrent reader sees whole, old or new, never truncated."""
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=PART)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(part, path)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise


def pin(path: Path) -> int | None:
    """An fd on the file at ``path`` with a shared lock on it, or None if there is none.

    The lock waits for an eviction holding the file (milliseconds); if that eviction unlinked
    it, ``path`` no longer names our file and the caller fetches again."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if same_file(fd, path):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None
