"""A bounded read-through cache of stored media on this machine's disk (remote stores only).

One :class:`ReadThroughCache` per process (:func:`process_cache`), in the folder
``MASKWRIGHT["MEDIA_CACHE_DIR"]`` (default ``MEDIA_ROOT/cache``), bounded to
``MASKWRIGHT["MEDIA_CACHE_BYTES"]``: least recently used entries go first. Each entry has a
sidecar ``<name>.sha256`` with the digest of the bytes as they came from the store; every use
hashes the entry again and compares it with the sidecar and with what the database says
(``sha256`` / ``size_bytes`` given by the caller), so a corrupted, truncated or swapped entry
is fetched again instead of being used. Entries in use (between :meth:`acquire` and
:meth:`release`) are never evicted by this process.

Several processes may share the folder: each keeps its own index and bound (an approximation,
documented in the settings); a file another process evicted is simply fetched again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from .exceptions import ApplicationError

_CHUNK = 1 << 20
_SIDECAR = ".sha256"


class ChecksumMismatch(ApplicationError):
    """The store holds bytes that differ from what the database says of them."""

    status_code = 409
    code = "checksum_mismatch"


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ReadThroughCache:
    """Files fetched from the store, by name, bounded to ``max_bytes`` (LRU)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self._lru: OrderedDict[str, int] = OrderedDict()  # name -> bytes; oldest first
        self._pins: dict[str, int] = {}
        self._lock = threading.Lock()
        self._scanned = False
        self.fetches = 0  # how many times the store was read (tests, benches)

    @property
    def total_bytes(self) -> int:
        return sum(self._lru.values())

    def path_of(self, relative: str) -> Path:
        path = (self.folder / relative).resolve()
        if self.folder.resolve() not in path.parents or relative.endswith(_SIDECAR):
            raise ValueError(f"{relative!r} is not a cacheable media name")
        return path

    def _scan(self) -> None:
        """Adopt the entries an earlier run of this process left, oldest first."""
        if self._scanned:
            return
        self._scanned = True
        found = []
        for path in self.folder.rglob("*"):
            if path.is_file() and not path.name.endswith(_SIDECAR) and ".part" not in path.name:
                stat, name = path.stat(), path.relative_to(self.folder).as_posix()
                found.append((stat.st_mtime, name, stat.st_size))
        for _, name, size in sorted(found):
            self._lru[name] = size

    def _valid(self, path: Path, sha256: str | None, size_bytes: int | None) -> bool:
        try:
            recorded = path.with_name(path.name + _SIDECAR).read_text().strip()
            actual, size = _digest(path)
        except FileNotFoundError:
            return False
        if actual != recorded or (sha256 and actual != sha256):
            return False
        return size_bytes is None or size == size_bytes

    def acquire(
        self,
        relative: str,
        opener: Callable[[], BinaryIO],
        *,
        sha256: str | None = None,
        size_bytes: int | None = None,
        max_bytes: int | None = None,
    ) -> Path:
        """The local file of ``relative``, pinned until :meth:`release`; fetched through
        ``opener`` when absent or no longer valid. Raises :class:`ChecksumMismatch` when the
        store's bytes differ from ``sha256`` / ``size_bytes`` (nothing is cached then), and
        ValueError past ``max_bytes``."""
        path = self.path_of(relative)
        with self._lock:
            self._scan()
            self._pins[relative] = self._pins.get(relative, 0) + 1
        try:
            if relative in self._lru and self._valid(path, sha256, size_bytes):
                with self._lock:
                    self._lru.move_to_end(relative)
                os.utime(path)  # the order a later process adopts
                return path
            self._fetch(relative, path, opener, sha256, size_bytes, max_bytes)
            return path
        except BaseException:
            self.release(relative)
            raise

    def release(self, relative: str) -> None:
        with self._lock:
            left = self._pins.get(relative, 0) - 1
            if left > 0:
                self._pins[relative] = left
            else:
                self._pins.pop(relative, None)

    def _fetch(
        self,
        relative: str,
        path: Path,
        opener: Callable[[], BinaryIO],
        sha256: str | None,
        size_bytes: int | None,
        max_bytes: int | None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, part_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        part = Path(part_name)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, opener() as stream:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ValueError(
                            f"{relative} is larger than the limit of {max_bytes:,} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            actual = digest.hexdigest()
            self.fetches += 1
            if (sha256 and actual != sha256) or (size_bytes is not None and size != size_bytes):
                raise ChecksumMismatch(
                    f"{relative} in the media store does not match the database's checksum"
                    " (changed or damaged behind our back)"
                )
            path.with_name(path.name + _SIDECAR).write_text(actual)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        with self._lock:
            self._lru[relative] = size
            self._lru.move_to_end(relative)
            self._evict()

    def _evict(self) -> None:
        """Drop least recently used, unpinned entries until the bound holds (the lock is held)."""
        total = self.total_bytes
        for name in list(self._lru):
            if total <= self.max_bytes:
                break
            if name in self._pins:
                continue
            total -= self._lru.pop(name)
            path = self.folder / name
            path.unlink(missing_ok=True)
            path.with_name(path.name + _SIDECAR).unlink(missing_ok=True)


_caches: dict[tuple[str, int], ReadThroughCache] = {}
_caches_lock = threading.Lock()


def process_cache() -> ReadThroughCache:
    """This process's cache for the current settings (tests change them at run time)."""
    conf = settings.MASKWRIGHT
    folder = conf.get("MEDIA_CACHE_DIR") or str(Path(settings.MEDIA_ROOT) / "cache")
    key = (str(folder), int(conf.get("MEDIA_CACHE_BYTES", 2 * 2**30)))
    with _caches_lock:
        if key not in _caches:
            _caches[key] = ReadThroughCache(Path(key[0]), key[1])
        return _caches[key]
