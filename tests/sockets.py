"""The app's websockets as a signed-in browser page of this site opens them, for tests that
drive ``config.asgi`` in process with channels' ``WebsocketCommunicator``."""

from __future__ import annotations

from django.test import Client

PASSWORD = "pw-12345678"  # the factories' and ``make_user``'s


def session_cookie(username: str) -> bytes:
    """The ``Cookie`` header of a fresh session of ``username`` (signed in with the tests'
    password); call it through ``sync_to_async`` from async code."""
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def site_headers(cookie: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """Handshake headers of a page of this site (the same-origin check reads Origin and Host),
    with the session cookie when given."""
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return headers
