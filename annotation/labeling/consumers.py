"""The annotation socket, ``ws/annotate/`` (protocol: ``protocol.schema.json`` beside this file).

Thin: it reads and checks a message, calls a service in :mod:`.live`, and sends the reply. The
services run in a thread (they touch Postgres and Redis); the socket never waits for a model:
masks come back later through the channel layer (``annotate_mask``), after the worker's commit.
A request with no answer after ``INTERACTIVE_RETRY_S`` is sent once more to any live worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from annotation.common.consumers import OwnThread
from annotation.common.exceptions import ApplicationError, Conflict, Forbidden, NotFound
from annotation.common.ratelimit import TokenBucket

from . import finding, live, prefetching
from .models import Prompt
from .protocol import MAX_MESSAGE_BYTES, ProtocolError, parse

log = logging.getLogger(__name__)

# An annotator's pause before the task's next image is computed: time since the last mask
# arrived with no prompt waiting for its mask (waiting for a mask is no pause).
IDLE_PREFETCH_S = 1.5
PROMPT_KINDS = frozenset(Prompt.Kind.values)  # a prompt's message type is its kind
MASK_MESSAGES = PROMPT_KINDS | {"undo", "redo"}  # what a mask answers
# A refused message's seq, read from its text without parsing it (digits bounded: int() of a
# huge digit string is slow). The first "seq" key wins; null when there is none.
SEQ_IN_TEXT = re.compile(r'"seq"\s*:\s*(\d{1,16})(?!\d)')
# A message costs one token plus one per this many bytes: parsing (json + schema, on the event
# loop every socket shares) grows with size, so a flood of large frames is held to the same
# parse time as a flood of small ones.
TOKEN_BYTES = 4096
# A ``found`` message: what the worker's ``annotate.found`` event says (finding.found_save)
FOUND_KEYS = ("seq", "label_id", "text", "objects", "count", "skipped", "model_ms", "worker")


def _error_code(exc: Exception) -> str:
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Forbidden):
        return "forbidden"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, ApplicationError) and exc.code != ApplicationError.code:
        return exc.code  # a service's own code, e.g. too_many_prompts
    return "bad_request"


class AnnotateConsumer(OwnThread, AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.session = live.Session(user=user, reply_channel=self.channel_name)
        self.retry_s = float(settings.MASKWRIGHT["INTERACTIVE_RETRY_S"])
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.idle_timer: asyncio.TimerHandle | None = None
        self.find_timer: asyncio.TimerHandle | None = None  # gives up on a Find all
        self.answered: dict[int, int] = {}  # instance → newest rev whose mask (or error) came
        self.bucket = TokenBucket(
            settings.MASKWRIGHT["SOCKET_RATE"], settings.MASKWRIGHT["SOCKET_BURST"]
        )
        # refusals are counted too: a client that keeps sending regardless of retry_after
        # spends these, and is closed when they run out
        self.refusals = TokenBucket(
            settings.MASKWRIGHT["SOCKET_REFUSALS_RATE"],
            settings.MASKWRIGHT["SOCKET_REFUSALS_BURST"],
        )
        self.flood_closed = False
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for timer in getattr(self, "timers", {}).values():
            timer.cancel()
        if getattr(self, "idle_timer", None) is not None:
            self.idle_timer.cancel()
        if getattr(self, "find_timer", None) is not None:
            self.find_timer.cancel()

    # -- client → server ------------------------------------------------------------------
    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        received_at = time.time()
        # The token is taken before the frame is read: parsing (json + schema) is the costly
        # part of a flood of oversized or invalid messages, and it runs on the event loop
        # every socket shares.
        frame = text_data if text_data is not None else bytes_data or b""
        wait = self.bucket.take(1 + len(frame) // TOKEN_BYTES)
        if wait:
            await self._rate_limited(text_data, wait)
            return
        if text_data is None:
            await self.send_json(
                {
                    "type": "error",
                    "seq": None,
                    "code": "bad_request",
                    "message": "send JSON text messages, not binary",
                }
            )
            return
        size = len(text_data.encode())  # the limit is in bytes; non-ASCII text has more
        if size > MAX_MESSAGE_BYTES:
            await self.send_json(
                {
                    "type": "error",
                    "seq": None,
                    "code": "bad_request",
                    "message": f"message of {size} bytes; the limit is {MAX_MESSAGE_BYTES}",
                }
            )
            return
        try:
            message = parse(text_data)
        except ProtocolError as exc:
            await self.send_json(
                {"type": "error", "seq": exc.seq, "code": "bad_request", "message": str(exc)}
            )
            return
        seq = message["seq"]
        try:
            reply = await self.handle(message, received_at)
        except ApplicationError as exc:
            await self.send_json(
                {"type": "error", "seq": seq, "code": _error_code(exc), "message": exc.message}
            )
            return
        except Exception:  # never let one message kill the socket
            log.exception("annotate message failed: %s", message.get("type"))
            await self.send_json(
                {
                    "type": "error",
                    "seq": seq,
                    "code": "server_error",
                    "message": "the server could not handle this message; it is logged",
                }
            )
            return
        finally:
            if message["type"] in MASK_MESSAGES:
                self._pause_start()  # waits for the prompt's mask, or a refused one restarts it
        if reply is not None:
            await self.send_json({**reply, "seq": seq})

    async def _rate_limited(self, text_data: str | None, wait: float) -> None:
        """Refuse a message unread (never queued: one client's flood must not hold the
        interactive queue), naming the seq its text shows; close a socket that keeps
        sending regardless, which no retry_after will slow down."""
        if self.flood_closed:
            return  # closed already: frames still in flight get nothing
        if self.refusals.take():
            self.flood_closed = True
            log.warning(
                "annotate socket of user %s closed: it kept sending past its rate",
                self.session.user.id,
            )
            await self.close(code=1008)  # policy violation
            return
        found = SEQ_IN_TEXT.search(text_data, 0, 4096) if text_data is not None else None
        # at least 1 ms: a wait that rounds to 0 would read as "send again now"
        await self.send_json(
            {
                "type": "error",
                "seq": int(found[1]) if found else None,
                "code": "rate_limited",
                "retry_after": max(round(wait, 3), 0.001),
                "message": f"too many messages; send again in {wait:.2f} s",
            }
        )

    async def handle(self, m: dict[str, Any], received_at: float) -> dict[str, Any] | None:
        kind, s = m["type"], self.session
        call = database_sync_to_async
        if kind == "open":
            opened = await call(live.open_image)(
                s, m["image_id"], m.get("task_id"), m.get("method"), m.get("backbone")
            )
            await self.send_json({"type": "opened", **opened, "seq": m["seq"]})
            # masks past the reply's budget, one message each: never one huge frame to encode
            # and compress on the event loop; the next message is read after the last of them
            for instance_id in opened["masks_follow"]:
                obj = await call(live.object_mask)(s, instance_id)
                if obj is not None:
                    await self.send_json({"type": "object", "seq": m["seq"], "object": obj})
            self.answered.clear()
            self._pause_start()
            return None
        if kind == "set_method":
            return {
                "type": "method",
                **await call(live.set_method)(s, m["method"], m.get("backbone")),
            }
        if kind == "new_object":
            return {"type": "object", "object": await call(live.object_new)(s, m.get("label_id"))}
        if kind == "select_object":
            await call(live.object_of)(s, m["object_id"])
            return {"type": "selected", "object_id": m["object_id"]}
        if kind == "delete_object":
            await call(live.object_delete)(s, m["object_id"])
            return {"type": "object_deleted", "object_id": m["object_id"]}
        if kind == "set_label":
            return {
                "type": "object",
                "object": await call(live.object_set_label)(s, m["object_id"], m["label_id"]),
            }
        if kind in MASK_MESSAGES:
            self._pause_stop()  # a prompt ends the pause, before it is even logged
        if kind in PROMPT_KINDS:
            payload = {k: v for k, v in m.items() if k not in ("type", "seq", "object_id")}
            rev = await call(live.prompt_add)(
                s, m["object_id"], kind, payload, seq=m["seq"], received_at=received_at
            )
            self._watch(m["object_id"], rev, m["seq"], received_at)
            return None  # the answer is the mask, later
        if kind in ("undo", "redo"):
            rev = await call(live.prompt_step)(
                s, m["object_id"], kind == "redo", seq=m["seq"], received_at=received_at
            )
            if rev is None:
                return {
                    "type": "error",
                    "code": f"nothing_to_{kind}",
                    "message": f"nothing to {kind} on object {m['object_id']}",
                }
            self._watch(m["object_id"], rev, m["seq"], received_at)
            return None
        if kind == "find_all":
            await call(finding.find_all)(s, m["label_id"], seq=m["seq"], received_at=received_at)
            self._find_watch(m["seq"])
            return None  # the answer is ``found``, later
        if kind == "save":
            return {"type": "saved", **await call(live.save)(s)}
        if kind == "submit":
            return {"type": "submitted", **await call(live.submit)(s, m["task_id"])}
        if kind == "ping":
            return {"type": "pong"}
        raise ApplicationError(f"unknown message type {kind!r}")

    # -- the task's next image, computed while the annotator pauses -----------------------------
    def _pause_stop(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _waiting_for_masks(self) -> bool:
        return any(rev > self.answered.get(i, 0) for i, rev in self.session.sent.items())

    def _pause_start(self) -> None:
        """(Re)start the pause timer once nothing waits for a mask: after ``IDLE_PREFETCH_S``
        with no new prompt the worker computes the task's next image. The time a prompt waits
        for its mask is no pause (counting it sent the prefetch ahead of the next click); pings
        and other messages neither start nor stop it. The next prompt calls off a prefetch
        still queued and stops one the worker started (``prefetching``): it never delays a
        click."""
        self._pause_stop()
        if self.session.next_image_id is None or self._waiting_for_masks():
            return
        self.idle_timer = asyncio.get_running_loop().call_later(
            IDLE_PREFETCH_S, lambda: asyncio.ensure_future(self._prefetch_next())
        )

    async def _prefetch_next(self) -> None:
        self.idle_timer = None
        try:
            await database_sync_to_async(prefetching.prefetch_next)(self.session)
        except Exception:
            log.exception("could not prefetch the next image of image %s", self.session.image_id)

    # -- a request nobody answered -------------------------------------------------------
    def _watch(
        self, instance_id: int, rev: int, seq: int, received_at: float, attempt: int = 0
    ) -> None:
        self._unwatch(instance_id)
        loop = asyncio.get_running_loop()
        self.timers[instance_id] = loop.call_later(
            self.retry_s * (attempt + 1),
            lambda: asyncio.ensure_future(self._retry(instance_id, rev, seq, received_at, attempt)),
        )

    def _unwatch(self, instance_id: int) -> None:
        timer = self.timers.pop(instance_id, None)
        if timer is not None:
            timer.cancel()

    async def _retry(
        self, instance_id: int, rev: int, seq: int, received_at: float, attempt: int
    ) -> None:
        self.timers.pop(instance_id, None)
        try:
            sent = await database_sync_to_async(live.requeue)(
                self.session, instance_id, rev, seq=seq, received_at=received_at
            )
        except Exception:
            log.exception("could not requeue object %s", instance_id)
            return
        if sent and attempt < 2:
            log.warning(
                "no answer for object %s rev %s in time: sent again to any worker", instance_id, rev
            )
            self._watch(instance_id, rev, seq, received_at, attempt + 1)

    # -- worker → socket (channel layer) -------------------------------------------------------
    async def annotate_mask(self, event: dict[str, Any]) -> None:
        instance_id, rev = event["instance_id"], event["rev"]
        if self.session.sent.get(instance_id, 0) <= rev:
            self._unwatch(instance_id)
        # the mask answers every prompt up to ``rev``: name the newest seq of those
        seq, received_at = live.answered_seq(
            self.session, instance_id, rev, (event["seq"], event["received_at"])
        )
        now = time.time()
        total_ms = round((now - received_at) * 1000, 2)
        stages = dict(event.get("stages", {}))
        if "saved_at" in stages:
            stages["reply"] = round((now - stages.pop("saved_at")) * 1000, 2)
        self.answered[instance_id] = max(rev, self.answered.get(instance_id, 0))
        masks = event["masks"]
        for i, m in enumerate(masks):
            await self.send_json(
                {
                    "type": "mask",
                    "seq": seq,
                    **m,
                    "model_ms": event["model_ms"],
                    "total_ms": total_ms,
                    "worker": event["worker"],
                    "cached": event["cached"],
                    "final": i == len(masks) - 1,
                    "stages_ms": stages,
                }
            )
        self._pause_start()  # the pause runs from the last mask, if nothing else waits

    async def annotate_failed(self, event: dict[str, Any]) -> None:
        self._unwatch(event["instance_id"])
        # a failure answers the prompt as a mask would: it waits no more
        sent = self.session.sent.get(event["instance_id"], 0)
        self.answered[event["instance_id"]] = max(sent, self.answered.get(event["instance_id"], 0))
        await self.send_json(
            {
                "type": "error",
                "seq": event["seq"],
                "code": "server_error",
                "message": event["message"],
            }
        )

    # -- Find all ------------------------------------------------------------------------------
    def _find_watch(self, seq: int) -> None:
        """Give up on the find of ``seq`` after ``finding.FIND_WAIT_S`` without an answer (its
        worker may have died): the socket hears an error and may find again."""
        if self.find_timer is not None:
            self.find_timer.cancel()
        self.find_timer = asyncio.get_running_loop().call_later(
            finding.FIND_WAIT_S, lambda: asyncio.ensure_future(self._find_expired(seq))
        )

    def _find_done(self, seq: int) -> None:
        if self.session.finding == seq and self.find_timer is not None:
            self.find_timer.cancel()
            self.find_timer = None
        finding.answered(self.session, seq)

    async def _find_expired(self, seq: int) -> None:
        self.find_timer = None
        if self.session.finding != seq:
            return  # answered, or another image was opened meanwhile
        finding.answered(self.session, seq)
        await self.send_json(
            {
                "type": "error",
                "seq": seq,
                "code": "server_error",
                "message": f"no answer to Find all in {finding.FIND_WAIT_S:.0f} s; try again",
            }
        )

    async def annotate_found(self, event: dict[str, Any]) -> None:
        self._find_done(event["seq"])
        if event["image_id"] != self.session.image_id:
            return  # another image is open now: its objects are stored, shown when reopened
        await self.send_json({"type": "found", **{k: event[k] for k in FOUND_KEYS}})

    async def annotate_find_failed(self, event: dict[str, Any]) -> None:
        self._find_done(event["seq"])
        await self.send_json(
            {
                "type": "error",
                "seq": event["seq"],
                "code": "server_error",
                "message": event["message"],
            }
        )

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, separators=(",", ":"))
