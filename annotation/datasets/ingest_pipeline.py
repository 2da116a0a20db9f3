"""Many files ingested in order, a remote store's writes overlapping the checks of the next.

:class:`IngestPipeline` is what an upload of an archive or many files goes through; each file
is still checked and stored as :func:`.ingest.ingest_stream` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO, Self

from annotation.common import media
from annotation.common.media import StorageError

from .ingest import (
    FileReport,
    Refused,
    _limits,
    _prepare_owning,
    _Prepared,
    _register,
    copy_to_scratch,
    ingest_stream,
)
from .models import Dataset


@dataclass
class _Entry:
    """One file of a pipeline, in submission order: its report, or its writes in flight."""

    report: FileReport | None = None
    item: _Prepared | None = None
    stored: Future[None] | None = None


class IngestPipeline:
    """Ingest many files in order, overlapping a remote store's writes with the checking and
    thumbnailing of the files after them; reports go to ``emit`` in submission order.

    On a remote store (S3) each image's writes run on a small pool (``workers`` threads) and
    at most ``depth`` images wait for theirs, so memory and scratch space stay bounded; an
    image's row is written (on this thread, in order) only once its objects are stored. A
    failed write raises :class:`~annotation.common.media.StorageError` for that image, as
    :func:`ingest_stream` would; the images before it keep their rows, those after it get
    none. On local disk there is nothing to overlap (a write is a rename): each file is
    ingested as :func:`ingest_stream` does, at once.
    """

    def __init__(
        self,
        dataset: Dataset,
        emit: Callable[[FileReport], None],
        *,
        workers: int = 4,
        depth: int = 8,
    ) -> None:
        self.dataset = dataset
        self.emit = emit
        self.depth = depth
        self._queue: deque[_Entry] = deque()
        self._broken = False  # a write failed: nothing after it is registered
        self._pool = None if media.is_local() else ThreadPoolExecutor(workers, "ingest-put")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(failed=exc is not None)

    def add(self, report: FileReport) -> None:
        """A report made by the caller (a refused member), emitted after those before it."""
        self._queue.append(_Entry(report=report))
        self._drain()

    def ingest(self, name: str, stream: BinaryIO) -> None:
        """Read ``stream`` now (an error reading it raises here) and store it as an image."""
        if self._pool is None:
            self.add(ingest_stream(self.dataset, name, stream))
            return
        try:
            scratch, sha256, size = copy_to_scratch(stream, _limits()["MAX_IMAGE_BYTES"])
        except Refused as exc:
            self.add(FileReport(name, "refused", str(exc)))
            return
        try:
            # the same bytes earlier in this upload: let their row land first, so that this
            # file is reported as its duplicate, as one file at a time would
            while any(e.item is not None and e.item.sha256 == sha256 for e in self._queue):
                self._drain_one()
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        step = _prepare_owning(self.dataset, name, scratch, sha256, size)
        if isinstance(step, FileReport):
            self.add(step)
            return
        self._queue.append(_Entry(item=step, stored=self._pool.submit(step.store)))
        self._drain()
        while len(self._queue) > self.depth:
            self._drain_one()

    def close(self, *, failed: bool = False) -> None:
        """Register and emit everything still in flight, then stop the pool. After a failed
        write nothing more is registered; after a failure of the caller, what is stored is
        (as it would have been one file at a time) and a further failure stays quiet."""
        try:
            while self._queue and not self._broken:
                try:
                    self._drain_one()
                except Exception:
                    if not failed:
                        raise
                    # the caller's own exception is already on its way out; this one is
                    # the same store failing again
                    break
        finally:
            self._forget()
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _drain(self) -> None:
        """Emit the head of the queue while it is ready (never waits for a write)."""
        while self._queue and (self._queue[0].stored is None or self._queue[0].stored.done()):
            self._drain_one()

    def _drain_one(self) -> None:
        entry = self._queue.popleft()
        if entry.stored is not None and entry.item is not None:
            try:
                entry.stored.result()
            except StorageError:
                self._broken = True
                raise
            except OSError as exc:
                # raised where the caller reads a later member: say it is this image's write
                self._broken = True
                raise StorageError(f"cannot store {entry.item.name}: {exc}") from exc
            except BaseException:
                self._broken = True
                raise
            entry.report = _register(self.dataset, entry.item)
        assert entry.report is not None
        self.emit(entry.report)

    def _forget(self) -> None:
        """Drop what is still queued after a failure: no rows; wait for the writes in flight
        (their scratch files go with them)."""
        while self._queue:
            entry = self._queue.popleft()
            if entry.stored is not None:
                wait([entry.stored])
