"""The media cache shared by several processes on one host: one bound for the whole folder
(least recently used out, whichever process used it), and a file that some process is using
(between acquire and release) is never evicted by another; an entry another process evicted
is fetched again. Each worker is a real separate process (spawned: a fork of the test process,
which has threads of earlier tests, could inherit a lock some thread held) with its own cache."""

from __future__ import annotations

import fcntl
import io
import multiprocessing
import os
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from annotation.common import media_cache
from annotation.common.media_cache import ReadThroughCache

SIZE = 400  # bytes of every entry; a bound of 1000 holds two of them


def _bytes(name: str) -> bytes:
    return (name.encode() * SIZE)[:SIZE]


def _serve(conn: Connection, folder: str, max_bytes: int, rescan_s: float | None) -> None:
    """A worker process: runs the cache operations the test sends, answers with what it saw."""
    cache = ReadThroughCache(Path(folder), max_bytes, rescan_s=rescan_s)
    held: dict[str, Path] = {}
    forked: list[tuple[int, int]] = []  # (pid, write end that keeps it waiting)
    while True:
        op, name = conn.recv()
        if op == "stop":
            return
        try:
            if op == "fork-use":  # a child forked now uses ``name``, then waits to be reaped
                forked.append(_fork_user(cache, name))
            elif op == "reap":
                for pid, keep in forked:
                    os.close(keep)
                    os.waitpid(pid, 0)
                forked.clear()
            if op in {"acquire", "use"}:
                held[name] = cache.acquire(name, lambda name=name: io.BytesIO(_bytes(name)))
                if op == "use":
                    cache.release(name)
            elif op == "release":
                cache.release(name)
            elif op == "read":  # the path acquire gave, opened now (as Pillow would)
                assert held[name].read_bytes() == _bytes(name)
            path = str(held[name]) if name in held else ""
            conn.send(
                ("ok", {"fetches": cache.fetches, "total_bytes": cache.total_bytes, "path": path})
            )
        except Exception as error:  # noqa: BLE001 - sent back to the test, which fails on it
            conn.send(("error", repr(error)))


def _fork_user(cache: ReadThroughCache, name: str) -> tuple[int, int]:
    """Fork (as a prefork pool does, with this process's pins held): the child acquires and
    releases ``name`` and stays alive, holding every fd it inherited, until the write end
    returned is closed. Returns (child pid, that write end) once the child's use is done."""
    wait_r, wait_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: this worker is single-threaded, so forking it is safe
        try:
            os.close(wait_w)
            cache.acquire(name, lambda: io.BytesIO(_bytes(name)))
            cache.release(name)
            os.write(done_w, b"k")
            os.read(wait_r, 1)  # EOF when the worker closes its end: reaped
        finally:
            os._exit(0)
    os.close(wait_r)
    os.close(done_w)
    assert os.read(done_r, 1) == b"k", "the forked child failed"
    os.close(done_r)
    return pid, wait_w


class Worker:
    """A separate process with its own :class:`ReadThroughCache` on the shared folder."""

    def __init__(self, folder: Path, max_bytes: int, rescan_s: float | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, str(folder), max_bytes, rescan_s), daemon=True
        )
        self.process.start()

    def __call__(self, op: str, name: str = "") -> dict[str, Any]:
        self.conn.send((op, name))
        assert self.conn.poll(30), f"worker did not answer {op} {name}"
        status, answer = self.conn.recv()
        assert status == "ok", answer
        return answer

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(("stop", ""))
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    started: list[Worker] = []

    def start(max_bytes: int = 1000, rescan_s: float | None = 0.0) -> Worker:
        started.append(Worker(tmp_path / "cache", max_bytes, rescan_s))
        return started[-1]

    yield start
    for worker in started:
        worker.close()


def _entries(folder: Path) -> dict[str, int]:
    """The cache's entries on disk (no sidecars, partial files or the lock), with their bytes."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and p.suffix not in {".sha256", ".part", ".lock"}
    }


def test_processes_sharing_a_folder_keep_it_within_one_bound_lru_across_them(workers, tmp_path):
    folder = tmp_path / "cache"
    a, b = workers(rescan_s=0.0), workers(rescan_s=0.0)  # a rescan on every fetch: exact
    a("use", "a0.bin")
    b("use", "b/b0.bin")
    a("use", "a1.bin")  # three entries do not fit: the least recently used, a0, goes
    assert _entries(folder) == {"b/b0.bin": SIZE, "a1.bin": SIZE}
    a("use", "b/b0.bin")  # a hit on b's entry: now a1 is the least recently used
    assert a("use", "b/b0.bin")["fetches"] == 2  # read from b's fetch, not from the store
    b("use", "b1.bin")
    assert _entries(folder) == {"b/b0.bin": SIZE, "b1.bin": SIZE}
    for i in range(2, 6):  # each process alone keeps within the bound, and so does the folder
        for worker, name in ((a, f"a{i}.bin"), (b, f"b{i}.bin")):
            worker("use", name)
            assert sum(_entries(folder).values()) <= 1000
            assert name in _entries(folder)


def test_between_rescans_an_overshoot_is_corrected_by_the_next_fetch_over_the_bound(
    workers, tmp_path
):
    folder = tmp_path / "cache"
    a, b = workers(rescan_s=60.0), workers(rescan_s=60.0)  # the test runs within one period
    a("use", "a0.bin")
    b("use", "b0.bin")
    a("use", "a1.bin")  # a's view, {a0, a1}, fits: b0 is not seen yet, the folder overshoots
    assert sum(_entries(folder).values()) == 3 * SIZE
    a("use", "a2.bin")  # over a's own view: a rescans, sees b0, and evicts down to the bound
    assert _entries(folder) == {"a1.bin": SIZE, "a2.bin": SIZE}
    assert a("use", "a2.bin")["total_bytes"] == 2 * SIZE


def test_a_rescan_is_due_after_rescan_s_even_within_the_own_view(workers, tmp_path):
    folder = tmp_path / "cache"
    a, b = workers(rescan_s=0.3), workers(rescan_s=0.3)
    a("use", "a0.bin")
    b("use", "b0.bin")
    time.sleep(0.35)
    a("use", "a1.bin")  # a's view {a0, a1} fits, but the rescan is due: a0 goes
    assert _entries(folder) == {"b0.bin": SIZE, "a1.bin": SIZE}


def test_an_entry_another_process_pins_is_never_evicted_until_released(workers, tmp_path):
    folder = tmp_path / "cache"
    a, b = workers(), workers()
    b("acquire", "held.bin")  # b hands the path to a reader that opens it later
    for i in range(4):  # held.bin is the least recently used each time, but locked
        a("use", f"a{i}.bin")
        assert "held.bin" in _entries(folder)
        assert sum(_entries(folder).values()) <= 1000
        b("read", "held.bin")
    b("acquire", "held.bin")  # nested: one release leaves it pinned
    b("release", "held.bin")
    a("use", "a4.bin")
    assert "held.bin" in _entries(folder)
    b("read", "held.bin")
    b("release", "held.bin")  # the last release: now the next eviction may take it
    a("use", "a5.bin")
    assert _entries(folder) == {"a4.bin": SIZE, "a5.bin": SIZE}
    assert not (folder / "held.bin.sha256").exists()


def test_several_caches_in_one_process_respect_each_others_pins(tmp_path):
    """Two caches on one folder in one process (settings changed at run time) cannot see each
    other's pin counts; the advisory lock protects the entry all the same."""
    one = ReadThroughCache(tmp_path / "c", max_bytes=1000, rescan_s=0)
    two = ReadThroughCache(tmp_path / "c", max_bytes=1000, rescan_s=0)
    held = one.acquire("held.bin", lambda: io.BytesIO(_bytes("held.bin")))
    for i in range(3):
        two.acquire(f"t{i}.bin", lambda i=i: io.BytesIO(_bytes(f"t{i}.bin")))
        two.release(f"t{i}.bin")
        assert held.read_bytes() == _bytes("held.bin")
    one.release("held.bin")
    two.acquire("t3.bin", lambda: io.BytesIO(_bytes("t3.bin")))
    two.release("t3.bin")
    assert not held.exists() and two.total_bytes == 2 * SIZE


def test_an_entry_another_process_evicted_is_fetched_again(workers, tmp_path):
    folder = tmp_path / "cache"
    a, b = workers(), workers()
    assert a("use", "gone.bin")["fetches"] == 1
    b("use", "b0.bin")
    b("use", "b1.bin")  # evicts gone.bin, a's least recently used entry
    assert "gone.bin" not in _entries(folder)
    seen = a("acquire", "gone.bin")
    assert seen["fetches"] == 2 and seen["total_bytes"] <= 1000
    a("read", "gone.bin")
    a("release", "gone.bin")
    # deleted behind everyone's back (an operator clearing the folder): fetched again too
    (folder / "gone.bin").unlink()
    assert a("use", "gone.bin")["fetches"] == 3
    assert _entries(folder)["gone.bin"] == SIZE


def test_a_fetched_entry_is_locked_from_the_moment_it_appears(tmp_path, monkeypatch):
    """No window between the rename into place and the pin: an eviction elsewhere that looks
    at the entry the instant it appears finds it locked."""
    real_replace, blocked = os.replace, []

    def replace_then_try_to_lock(src, dst):  # what another process's eviction would try
        real_replace(src, dst)
        if str(dst).endswith(".sha256"):
            return
        fd = os.open(dst, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            blocked.append(False)
        except BlockingIOError:
            blocked.append(True)
        finally:
            os.close(fd)

    monkeypatch.setattr(media_cache.os, "replace", replace_then_try_to_lock)
    cache = ReadThroughCache(tmp_path / "c", max_bytes=1000)
    path = cache.acquire("new.bin", lambda: io.BytesIO(_bytes("new.bin")))
    assert blocked == [True] and path.read_bytes() == _bytes("new.bin")
    monkeypatch.undo()
    cache.release("new.bin")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: nobody holds it now
    finally:
        os.close(fd)


def test_a_forked_child_does_not_keep_its_parents_pins(workers, tmp_path):
    """A process forked while its parent pins an entry (a prefork pool's child) inherits the
    lock's fd; it closes its copy, so the parent's release is what frees the entry."""
    worker = workers()
    held = worker("acquire", "held.bin")["path"]
    worker("fork-use", "c0.bin")  # the child stays alive, with the fds it inherited
    worker("release", "held.bin")
    worker("use", "p0.bin")  # three entries: held.bin, the oldest and released, goes
    assert _entries(tmp_path / "cache") == {"c0.bin": SIZE, "p0.bin": SIZE}
    assert not Path(held).exists()
    worker("reap")


def test_a_copy_fetched_at_the_same_time_never_replaces_one_in_use(tmp_path):
    """Two fetches of one name at once: the second to finish keeps the first's copy, which is
    in use (renaming over it would leave the first's lock on a file no name leads to)."""
    one = ReadThroughCache(tmp_path / "c", max_bytes=1000, rescan_s=0)
    two = ReadThroughCache(tmp_path / "c", max_bytes=1000, rescan_s=0)
    first: list[Path] = []

    def slow_store() -> io.BytesIO:  # while two reads the store, one fetches and pins x.bin
        first.append(one.acquire("x.bin", lambda: io.BytesIO(_bytes("x.bin"))))
        return io.BytesIO(_bytes("x.bin"))

    path = two.acquire("x.bin", slow_store)
    inode = first[0].stat().st_ino
    assert path == first[0] and path.stat().st_ino == inode  # two took one's copy
    assert one.fetches == two.fetches == 1
    two.release("x.bin")
    for i in range(3):  # two's evictions: x.bin is the oldest, but one still holds it
        two.acquire(f"t{i}.bin", lambda i=i: io.BytesIO(_bytes(f"t{i}.bin")))
        two.release(f"t{i}.bin")
        assert path.stat().st_ino == inode and path.read_bytes() == _bytes("x.bin")
    assert [p.name for p in path.parent.glob("*.part")] == []  # two's copy was dropped
    one.release("x.bin")


def test_a_damaged_copy_in_use_is_not_replaced_until_released(tmp_path):
    """Bit rot in a file someone holds: a fresh copy cannot be renamed over it (the holder's
    lock would stop protecting the name), so the use is refused until the holder releases."""
    cache = ReadThroughCache(tmp_path / "c", max_bytes=1000)
    path = cache.acquire("x.bin", lambda: io.BytesIO(_bytes("x.bin")))
    inode = path.stat().st_ino
    path.write_bytes(b"rot" * 10)  # the same file, damaged in place
    with pytest.raises(OSError, match="in use .* does not match its checksum"):
        cache.acquire("x.bin", lambda: io.BytesIO(_bytes("x.bin")))
    assert path.stat().st_ino == inode and [p for p in path.parent.glob("*.part")] == []
    cache.release("x.bin")
    again = cache.acquire("x.bin", lambda: io.BytesIO(_bytes("x.bin")))
    assert again.read_bytes() == _bytes("x.bin") and again.stat().st_ino != inode
    cache.release("x.bin")
