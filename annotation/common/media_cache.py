"""A bounded read-through cache of stored media on this machine's disk (remote stores only).

One :class:`ReadThroughCache` per process (:func:`process_cache`), in the folder
``MASKWRIGHT["MEDIA_CACHE_DIR"]`` (default ``MEDIA_ROOT/cache``), bounded to
``MASKWRIGHT["MEDIA_CACHE_BYTES"]``: least recently used entries go first. Each entry has a
sidecar ``<name>.sha256`` with the digest of the bytes as they came from the store; every use
hashes the entry again and compares it with the sidecar and with what the database says
(``sha256`` / ``size_bytes`` given by the caller), so a corrupted, truncated or swapped entry
is fetched again instead of being used.

Several processes may share the folder (an interactive worker, a batch worker and the web
process on one host), and the bound is the folder's, not each process's:

* An entry in use (between :meth:`~ReadThroughCache.acquire` and
  :meth:`~ReadThroughCache.release`) is held open with a shared advisory lock
  (``flock(LOCK_SH)``), taken on the fetch's ``.part`` file before it is renamed into place, so
  it is pinned from the moment it appears. Eviction unlinks an entry only while holding an
  exclusive lock taken without waiting (``LOCK_EX | LOCK_NB``), so it never removes a file any
  process is using; a locked entry is skipped.
* A fetch that takes this process's view of the folder over the bound, or the first fetch
  ``RESCAN_S`` seconds after the last scan, rescans the folder (entry sizes and modification
  times; a hit sets the entry's time, so mtime order is the LRU order across processes) and
  evicts the least recently used unlocked entries until the folder's total is within the bound
  (down to ``_EVICT_TO`` of it, so that a full cache does not rescan on every fetch). Between
  scans the folder may exceed the bound by what other processes fetched since.
* Renames into place and unlinks are serialised by a folder lock file (``.media-cache.lock``)
  and neither touches a locked entry: when two processes fetch one name at once, the second
  keeps the first's copy (a pinned path always names the file its lock holds). An entry
  another process evicted is fetched again by the next ``acquire``.

Advisory locks are local to one host: the folder must not be shared over NFS between hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from . import media_cache_files as files
from .exceptions import ApplicationError

_CHUNK = 1 << 20
_SIDECAR = ".sha256"

_FOLDER_LOCK = ".media-cache.lock"
_ATTEMPTS = 4  # a fetch that finds another's copy in use takes that one (if valid)
# Seconds after which a fetch rescans the folder even within this process's bound: how long
# what other processes fetched may go unseen (the folder's overshoot is at most that).
RESCAN_S = 5.0
# An eviction frees down to this share of the bound, so that a full cache rescans once per
# tenth of the bound fetched rather than on every fetch (a scan of 10k entries is ~40 ms).
_EVICT_TO = 0.9


class ChecksumMismatch(ApplicationError):
    """The store holds bytes that differ from what the database says of them."""

    status_code = 409
    code = "checksum_mismatch"


class ReadThroughCache:
    """Files fetched from the store, by name, the folder bounded to ``max_bytes`` (LRU)."""

    def __init__(self, folder: Path, max_bytes: int, *, rescan_s: float | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.rescan_s = RESCAN_S if rescan_s is None else float(rescan_s)
        # name -> bytes, least recently used first: the folder as of the last scan, plus what
        # this process used since
        self._lru: OrderedDict[str, int] = OrderedDict()
        self._pins: dict[str, int] = {}  # name -> nested acquires in this process
        self._held: dict[str, list[int]] = {}  # name -> fds holding LOCK_SH, closed at release
        self._lock = threading.Lock()
        self._scanned_at = float("-inf")  # time.monotonic() of the last scan
        self.fetches = 0  # how many times the store was read (tests, benches)
        _instances.add(self)

    @property
    def total_bytes(self) -> int:
        """The folder's entries in bytes as this process last saw them."""
        return sum(self._lru.values())

    def path_of(self, relative: str) -> Path:
        path = (self.folder / relative).resolve()
        if (
            self.folder.resolve() not in path.parents
            or relative.endswith(_SIDECAR)
            or relative == _FOLDER_LOCK
        ):
            raise ValueError(f"{relative!r} is not a cacheable media name")
        return path

    @contextlib.contextmanager
    def _folder_locked(self) -> Iterator[None]:
        """The folder lock, held by one process at a time around renames into place and
        unlinks (milliseconds: no fetch or hashing happens under it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / _FOLDER_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only fd on it releases the lock

    def _valid(self, path: Path, sha256: str | None, size_bytes: int | None) -> bool:
        try:
            recorded = path.with_name(path.name + _SIDECAR).read_text().strip()
            actual, size = files.digest(path)
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
        """The local file of ``relative``, pinned until :meth:`release` (no process evicts it
        meanwhile); fetched through ``opener`` when absent or no longer valid. Raises
        :class:`ChecksumMismatch` when the store's bytes differ from ``sha256`` /
        ``size_bytes`` (nothing is cached then), and ValueError past ``max_bytes``."""
        path = self.path_of(relative)
        name = self._name(path)
        with self._lock:
            self._pins[name] = self._pins.get(name, 0) + 1
        try:
            for _ in range(_ATTEMPTS):
                fd = files.pin(path)
                if fd is not None:
                    try:
                        hit = self._valid(path, sha256, size_bytes)
                        if hit:
                            files.touch(fd)
                    except BaseException:
                        os.close(fd)
                        raise
                    if hit:
                        self._keep(name, fd, fetched=False)
                        return path
                    os.close(fd)
                fd = self._fetch(relative, path, opener, sha256, size_bytes, max_bytes)
                if fd is not None:  # else another process's copy is in use there: take it
                    self._keep(name, fd, fetched=True)
                    return path
            raise OSError(
                f"{relative} in the media cache is in use (by this or another process) and"
                " does not match its checksum: it is fetched again once released"
            )
        except BaseException:
            self._unpin(name)
            raise

    def release(self, relative: str) -> None:
        """End one :meth:`acquire` of ``relative``; at the last one, other processes (and
        this one's evictions) may remove the file."""
        self._unpin(self._name(self.path_of(relative)))

    def _name(self, path: Path) -> str:
        """The index's name of ``path``: relative to the folder, as a scan finds it."""
        return path.relative_to(self.folder.resolve()).as_posix()

    def _unpin(self, name: str) -> None:
        with self._lock:
            left = self._pins.get(name, 0) - 1
            if left > 0:
                self._pins[name] = left
                return
            self._pins.pop(name, None)
            for fd in self._held.pop(name, []):
                os.close(fd)  # the last pin of this process on it: others may evict it now

    def _keep(self, name: str, fd: int, *, fetched: bool) -> None:
        """Record the pin's fd and the entry as most recent; after a fetch, rescan the folder
        if due and evict down to the bound."""
        with self._lock:
            held = self._held.setdefault(name, [])
            held.append(fd)  # first, so that release closes it whatever happens next
            stat = os.fstat(fd)
            if any(os.fstat(other).st_ino == stat.st_ino for other in held[:-1]):
                os.close(held.pop())  # a nested pin of the same file: one lock is enough
            self._lru[name] = stat.st_size
            self._lru.move_to_end(name)
            if not fetched:
                return
            due = time.monotonic() - self._scanned_at >= self.rescan_s
            if due or self.total_bytes > self.max_bytes:
                self._rescan()
            self._evict()

    def _fetch(
        self,
        relative: str,
        path: Path,
        opener: Callable[[], BinaryIO],
        sha256: str | None,
        size_bytes: int | None,
        max_bytes: int | None,
    ) -> int | None:
        """Fetch ``relative`` into ``path``; the fd of the new entry, holding a shared lock
        from before it appeared under its name, or None when a copy in use is there."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, part_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=files.PART)
        part = Path(part_name)
        digest, size = hashlib.sha256(), 0
        try:
            # the lock belongs to the open file, so it still holds once the file is renamed
            fcntl.flock(fd, fcntl.LOCK_SH)
            with os.fdopen(fd, "wb", closefd=False) as out, opener() as stream:
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
            files.touch(fd)
            with self._folder_locked():
                # a copy some process uses (another fetch of the same name won the race) is
                # never renamed over: its holder's lock would no longer protect the name
                placed = files.unused(path)
                if placed:
                    files.write_atomically(path.with_name(path.name + _SIDECAR), actual)
                    os.replace(part, path)
        except BaseException:
            os.close(fd)
            part.unlink(missing_ok=True)
            raise
        if not placed:
            os.close(fd)
            part.unlink(missing_ok=True)
            return None
        return fd

    def _rescan(self) -> None:
        """Rebuild the index from the folder, least recently modified first (the lock is held).

        Ties in time keep this process's own order; vanished entries drop out."""
        found: list[tuple[int, str, int]] = []
        self._walk(self.folder, "", found)
        rank = {name: i for i, name in enumerate(self._lru)}
        found.sort(key=lambda entry: (entry[0], rank.get(entry[1], -1), entry[1]))
        self._lru = OrderedDict((name, size) for _, name, size in found)
        self._scanned_at = time.monotonic()

    def _walk(self, folder: Path, prefix: str, found: list[tuple[int, str, int]]) -> None:
        """Append ``(mtime_ns, name, bytes)`` of the entries under ``folder`` to ``found``."""
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        self._walk(Path(entry.path), f"{prefix}{name}/", found)
                        continue
                    if name.endswith((_SIDECAR, files.PART)) or (
                        not prefix and name == _FOLDER_LOCK
                    ):
                        continue
                    if entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found.append((stat.st_mtime_ns, prefix + name, stat.st_size))
                except FileNotFoundError:
                    continue  # evicted by another process while we looked

    def _evict(self) -> None:
        """Past the bound, drop least recently used entries nobody holds down to
        ``_EVICT_TO`` of it (the lock is held); an entry another process holds is skipped,
        one already gone drops out."""
        total, target = self.total_bytes, int(self.max_bytes * _EVICT_TO)
        if total <= self.max_bytes:
            return
        with self._folder_locked():
            for name in list(self._lru):
                if total <= target:
                    break
                if name in self._pins or not self._unlink_unused(self.folder / name):
                    continue
                total -= self._lru.pop(name)

    @staticmethod
    def _unlink_unused(path: Path) -> bool:
        """Unlink ``path`` and its sidecar unless a process holds it; whether it is gone.

        The folder lock is held exclusively, so no rename puts another file under the name
        between the check and the unlink."""
        if not files.unused(path):
            return False
        path.unlink(missing_ok=True)
        path.with_name(path.name + _SIDECAR).unlink(missing_ok=True)
        return True

    def _after_fork_in_child(self) -> None:
        """A forked child inherits the parent's pin fds: close its copies (the parent's pins
        hold on through its own) and start with no pins of its own."""
        self._lock = threading.Lock()
        for fds in self._held.values():
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._held.clear()
        self._pins.clear()


_caches: dict[tuple[str, int], ReadThroughCache] = {}
_caches_lock = threading.Lock()
_instances: weakref.WeakSet[ReadThroughCache] = weakref.WeakSet()  # reset in a forked child


def process_cache() -> ReadThroughCache:
    """This process's cache for the current settings (tests change them at run time)."""
    conf = settings.MASKWRIGHT
    folder = conf.get("MEDIA_CACHE_DIR") or str(Path(settings.MEDIA_ROOT) / "cache")
    key = (str(folder), int(conf.get("MEDIA_CACHE_BYTES", 2 * 2**30)))
    with _caches_lock:
        if key not in _caches:
            _caches[key] = ReadThroughCache(Path(key[0]), key[1])
        return _caches[key]


def _reset_after_fork() -> None:
    global _caches_lock
    _caches_lock = threading.Lock()
    for cache in list(_instances):
        cache._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)
