"""Cooperative interruption of long per-image work.

A worker that answers one request at a time computes the next image's state ahead of the
clicks; a click that arrives meanwhile must not wait for it. The caller wraps the work in
:func:`interruptible` with a cheap ``should_stop`` test, and the work stops at its next
checkpoint by raising :class:`Interrupted`. Checkpoints are every torch module's forward
(a global forward pre-hook, active only inside the context and only on its thread) and the
explicit :func:`checkpoint` calls of long loops that run no module (M2N2's Sinkhorn steps).
Nothing outside :func:`interruptible` ever stops: :func:`checkpoint` is then a no-op.

The library knows nothing about what asks it to stop (Redis, a socket); that is the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Interrupted", "checkpoint", "interruptible"]

# Per thread (and per asyncio task): another thread's torch calls never see this context's test.
_should_stop: ContextVar[Callable[[], bool] | None] = ContextVar("should_stop", default=None)


class Interrupted(Exception):
    """The work was called off at a checkpoint; whatever it computed is to be dropped."""


def checkpoint() -> None:
    """Raise :class:`Interrupted` if the enclosing :func:`interruptible` says stop."""
    should_stop = _should_stop.get()
    if should_stop is not None and should_stop():
        raise Interrupted("called off")


def _module_checkpoint(module: object, args: object) -> None:
    checkpoint()


@contextmanager
def interruptible(should_stop: Callable[[], bool], every_s: float = 0.01) -> Iterator[None]:
    """Let the enclosed work stop at its checkpoints once ``should_stop()`` is true.

    ``should_stop`` is asked at most once per ``every_s`` seconds (a module forward can come
    every few microseconds; a Redis round trip costs a tenth of a millisecond), and once it
    said stop the answer stays stop. Latency from the stop signal to :class:`Interrupted` is
    ``every_s`` plus the longest stretch between checkpoints.
    """
    last_asked = -float("inf")
    stopped = False

    def throttled() -> bool:
        nonlocal last_asked, stopped
        now = time.monotonic()
        if not stopped and now - last_asked >= every_s:
            last_asked = now
            stopped = bool(should_stop())
        return stopped

    import torch

    token = _should_stop.set(throttled)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(_module_checkpoint)
    try:
        yield
    finally:
        handle.remove()
        _should_stop.reset(token)
