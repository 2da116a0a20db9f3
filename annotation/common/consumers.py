"""Project event stream: a browser joins its project's group and receives pushes
(job progress, mask changes) sent by services after commit, each as its role may see it
(an annotator only hears of the images of their tasks: ``labeling.selectors.project_event_for``)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import ThreadSensitiveContext, async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer

from annotation.common.realtime import project_group
from annotation.labeling.selectors import project_event_for
from annotation.projects.access import role_of


class OwnThread:
    """A consumer whose synchronous work runs on a thread of its own socket.

    Channels enters no ThreadSensitiveContext (Django's HTTP handler does), so every socket's
    ``database_sync_to_async`` work, a sync consumer's every handler, and the call channels 4.3
    makes before each message (``aclose_old_connections``) shared asgiref's one process-wide
    thread: one heavy ``open`` (52 s) held every other socket's messages, a ping included, as
    long. A context per socket gives each its own thread; its own calls still run in order."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext():
            await super().__call__(scope, receive, send)  # type: ignore[misc]


class ProjectEventsConsumer(OwnThread, JsonWebsocketConsumer):
    def connect(self) -> None:
        user = self.scope.get("user")
        project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        if user is None or not user.is_authenticated or role_of(user, project_id) is None:
            self.close(code=4404)  # same answer for unknown and foreign projects
            return
        self.user, self.project_id = user, project_id
        self.group = project_group(project_id)
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # Read-only stream: say so instead of dropping the message silently. What the browser
        # sent is never decoded: ``[`` × 100000 made json.loads raise RecursionError, and a
        # binary frame a ValueError, and either dropped the socket without a close frame.
        self.send_json({"type": "error", "message": "this socket only sends events"})

    def event_push(self, message: dict[str, Any]) -> None:
        payload = project_event_for(
            self.user, self.project_id, message["event"], message["payload"]
        )
        if payload is not None:
            self.send_json({"type": "event", "event": message["event"], "payload": payload})
