"""Request bodies refused before they are stored: an ASGI middleware in front of Django.

Django's ASGI handler reads the whole body into a temporary file before any Django middleware
or view runs, so an anonymous POST was written to /tmp in full before its 403, and a 4 GiB
model upload was refused only after it had been spooled (twice over, by the upload handlers).
This layer runs first and, for a request that has a body:

* refuses it with 413 when its Content-Length is over the limit of its path: the view's
  ``body_limit`` (a ``settings.MASKWRIGHT`` key; the upload views name theirs) plus room for the
  multipart envelope, else ``MAX_REQUEST_BYTES``;
* refuses a write to /api/ without valid credentials (session cookie or API token, checked in
  the database as Django and DRF check them) with DRF's own status and error, except sign-in;
* refuses it with the view's own 404 or 403 when the view declares ``authorize_body(user,
  **url_kwargs)`` (the upload views: the access checks their ``post`` makes) and it raises,
  so that a member without the right role, another tenant or an unknown id cannot have a
  gigabyte spooled to disk on the way to that answer;
* counts the bytes of a body as they arrive (chunked bodies have no Content-Length) and stops
  at the limit: Django sees the client go away and stores nothing more, and the client gets 413.

Every refusal closes the connection: the rest of the body is never read.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve

from annotation.common.exceptions import error_body

# Writes under /api/ that need no credentials: signing in.
ANONYMOUS_WRITES = ("/api/auth/token/",)
MULTIPART_SLACK = 2**20  # form fields and part headers around an uploaded file


def _view_of(path: str) -> tuple[Any, dict[str, Any]]:
    """(view class or None, URL kwargs, converted as the view gets them) of ``path``."""
    try:
        match = resolve(path)
    except Resolver404:
        return None, {}
    return getattr(match.func, "cls", None) or getattr(match.func, "view_class", None), match.kwargs


def limit_for(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    key = getattr(_view_of(path)[0], "body_limit", None)
    if key is None:
        return settings.MASKWRIGHT["MAX_REQUEST_BYTES"]
    return settings.MASKWRIGHT[key] + MULTIPART_SLACK


Refusal = tuple[int, str, str, dict[str, Any], list[tuple[bytes, bytes]]]


def _user_of(headers: dict[bytes, bytes]) -> tuple[Any | None, bool]:
    """(the user the credentials name or None, a token was sent). A token is checked first
    (DRF checks the session first, but a valid session with a bad token is refused by DRF
    all the same)."""
    from annotation.users.selectors import session_user, token_user

    scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
    if scheme.lower() == "token":
        return token_user(key.strip()), True
    cookie = parse_cookie(headers.get(b"cookie", b"").decode("latin-1")).get(
        settings.SESSION_COOKIE_NAME
    )
    return (session_user(cookie) if cookie else None), False


@database_sync_to_async
def _refusal_for(headers: dict[bytes, bytes], path: str) -> Refusal | None:
    """Why a write to ``path`` is refused before its body is read, or None. One thread hop:
    the credentials and the view's own access check read the database together."""
    from annotation.common.exceptions import ApplicationError

    user, token = _user_of(headers)
    if user is None and token:
        return 401, "authentication_failed", "Invalid token.", {}, [(b"www-authenticate", b"Token")]
    if user is None:
        return 403, "not_authenticated", "Authentication credentials were not provided.", {}, []
    view, kwargs = _view_of(path)
    authorize = getattr(view, "authorize_body", None)
    if authorize is not None:
        try:
            authorize(user, **kwargs)
        except ApplicationError as exc:  # the view's 404 / 403, as its post would answer
            return exc.status_code, exc.code, exc.message, exc.extra, []
    return None


async def _refuse(
    send: Any,
    status: int,
    code: str,
    message: str,
    detail: dict[str, Any] | None = None,
    extra_headers: list[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps(error_body(code, message, detail)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])  # ASGI header names are lower case
        length_header = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError:
            return await _refuse(send, 400, "bad_request", "Content-Length is not a number")
        if not chunked and not length:
            return await self.app(scope, receive, send)  # no body

        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        limit = limit_for(path)
        if length is not None and length > limit:
            return await _refuse(
                send,
                413,
                "too_large",
                f"the body is {length} bytes; this URL takes at most {limit}",
                {"limit": limit},
            )
        if path.startswith("/api/") and path not in ANONYMOUS_WRITES:
            refusal = await _refusal_for(headers, path)
            if refusal is not None:
                status, code, message, detail, extra_headers = refusal
                return await _refuse(send, status, code, message, detail, extra_headers)
        await self._streamed(scope, receive, send, limit)

    async def _streamed(self, scope: dict[str, Any], receive: Any, send: Any, limit: int) -> None:
        received, over, started = 0, False, False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # Django drops what it spooled and answers nothing
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if over and not started:
            await _refuse(
                send,
                413,
                "too_large",
                f"the body is over {limit} bytes, the most this URL takes",
                {"limit": limit},
            )
