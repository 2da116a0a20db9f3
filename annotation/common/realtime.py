"""The one place that pushes events to browsers, always after the transaction commits.

A service calls :func:`broadcast_on_commit`; the message reaches every websocket that joined the
group. Pushing before commit would let a browser fetch a row that is not there yet (or never
will be, if the transaction rolls back).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


def broadcast_on_commit(group: str, event: str, payload: dict[str, Any]) -> None:
    """Send ``{"type": "event", "event": event, "payload": payload}`` to ``group`` after commit."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(
                group, {"type": "event.push", "event": event, "payload": payload}
            )
        except Exception:  # a push is best effort: the data itself is already committed
            log.exception("could not push %s to %s", event, group)

    transaction.on_commit(send)


def send_on_commit(channel: str, message: dict[str, Any]) -> None:
    """Send ``message`` (a channel-layer message: its ``type`` names the consumer handler) to
    one consumer's channel after commit, e.g. a mask back to the socket that asked for it."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.send)(channel, message)
        except Exception:  # the socket may be gone; the data itself is committed
            log.exception("could not send %s to %s", message.get("type"), channel)

    transaction.on_commit(send)


def send_now(channel: str, message: dict[str, Any]) -> None:
    """Send to one consumer's channel at once (nothing to wait for: no data was written)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(channel, message)
    except Exception:
        log.exception("could not send %s to %s", message.get("type"), channel)
