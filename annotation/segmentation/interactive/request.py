"""The typed request of the interactive loop: one mask computation, socket → queue → worker.

It travels through Celery as a plain dict (JSON), :class:`WireForm`'s ``as_message`` and
``from_message`` being the only two places that know its wire form (Find all's request,
``annotation.labeling.finding.FindRequest``, travels the same way). The
worker never writes into it: the times it measures go into a separate :class:`Timeline`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Self


class WireForm:
    """The wire form of a request dataclass sent to a worker: a JSON-safe dict (``size_hw`` a
    list), read back with unknown keys (an older or newer sender) dropped."""

    size_hw: tuple[int, int]

    def as_message(self) -> dict[str, Any]:
        out = asdict(self)  # type: ignore[call-overload]
        out["size_hw"] = list(self.size_hw)
        return out  # type: ignore[no-any-return]

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Self:
        """The request from its wire form; unknown keys are dropped."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in message.items() if k in known}
        values["size_hw"] = tuple(values["size_hw"])
        return cls(**values)


@dataclass(frozen=True)
class MaskRequest(WireForm):
    """Compute the mask of ``instance_id`` (and, for a multi-object method, of the image's other
    objects prompted with it) from the prompt log as of revision ``rev`` or newer.

    ``size_hw``: the stored image's (height, width); ``seq`` / ``received_at``: the client's
    sequence number of the prompt and when the socket read it (epoch seconds); ``reply_channel``:
    the channel-layer name of the socket that answers; ``retry``: sent again after no answer.
    """

    image_id: int
    project_id: int
    instance_id: int
    method: str
    backbone: str
    rev: int
    reply_channel: str
    user_id: int
    seq: int
    received_at: float
    size_hw: tuple[int, int]
    retry: bool = False
    queued_at: float | None = None  # set when it is sent

    def sent_now(self) -> MaskRequest:
        return replace(self, queued_at=time.time())


@dataclass
class Timeline:
    """Where the server's time went for one request (epoch seconds, set by the worker)."""

    received_at: float
    queued_at: float
    started_at: float = field(default_factory=time.time)
    compute_at: float | None = None

    @classmethod
    def starting(cls, request: MaskRequest) -> Timeline:
        return cls(
            received_at=request.received_at, queued_at=request.queued_at or request.received_at
        )

    def stages_ms(self, model_s: float) -> dict[str, float]:
        """Milliseconds per stage up to the save (the consumer adds the reply's)."""
        now = time.time()
        computing = self.compute_at if self.compute_at is not None else self.started_at
        return {
            "log_and_queue": round((self.queued_at - self.received_at) * 1000, 2),
            "queue_wait": round((self.started_at - self.queued_at) * 1000, 2),
            "read_log": round((computing - self.started_at) * 1000, 2),
            "model": round(model_s * 1000, 2),
            "save": round((now - computing - model_s) * 1000, 2),
            "saved_at": now,
        }
