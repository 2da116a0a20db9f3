"""A websocket handshake is accepted only from this site's own origin: scheme, host and port.

Over a real uvicorn server (no worker needed): a page of another port on the same host must
not open a socket with the user's session cookie."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client, override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from annotation.common.origin import same_origin
from tests.conftest import _wait_for_other_sessions_to_end, uvicorn_server

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn on the test database; its base URL."""
    try:
        with uvicorn_server(tmp_path_factory.mktemp("uvicorn")) as (url, _):
            yield url
    finally:
        with django_db_blocker.unblock():
            _wait_for_other_sessions_to_end()


def _cookie(make_user) -> str:
    make_user("anna")
    client = Client()
    assert client.login(username="anna", password="pw-12345678")
    return f"sessionid={client.cookies['sessionid'].value}"


async def _handshake(url: str, cookie: str, origin: str) -> int:
    """101 when the socket opened (and answered a ping), else the refusal's HTTP status."""
    try:
        async with connect(
            url.replace("http://", "ws://") + "/ws/annotate/",
            open_timeout=10,
            additional_headers={"Cookie": cookie, "Origin": origin},
        ) as ws:
            await ws.send('{"type": "ping", "seq": 1}')
            assert '"pong"' in await asyncio.wait_for(ws.recv(), timeout=10)
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_another_port_or_scheme_of_the_same_host_is_refused(web, make_user):
    cookie = await sync_to_async(_cookie)(make_user)
    port = int(web.rsplit(":", 1)[1])
    assert await _handshake(web, cookie, web) == 101
    assert await _handshake(web, cookie, f"http://127.0.0.1:{port}/") == 101
    other = 9999 if port != 9999 else 9998
    for origin in (
        f"http://127.0.0.1:{other}",
        "http://127.0.0.1",
        f"https://127.0.0.1:{port}",
        f"http://localhost:{port}",
        "http://evil.example",
        "null",
    ):
        assert await _handshake(web, cookie, origin) == 403, origin


def _scope(origin: str | None, host: str | None, scheme: str = "ws", **extra: str) -> dict:
    headers = [(b"origin", origin.encode())] if origin else []
    if host:
        headers.append((b"host", host.encode()))
    headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()]
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@override_settings(
    ALLOWED_HOSTS=["example.com", "127.0.0.1"],
    CSRF_TRUSTED_ORIGINS=["https://app.example.org", "https://*.example.net"],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_the_rule_behind_a_tls_proxy_and_for_trusted_origins():
    assert same_origin(_scope("https://example.com", "example.com", x_forwarded_proto="https"))
    assert same_origin(_scope("https://example.com", "example.com:443", scheme="wss"))
    assert same_origin(_scope("http://example.com:8000", "example.com:8000"))
    assert not same_origin(_scope("http://example.com", "example.com", x_forwarded_proto="https"))
    assert not same_origin(_scope("https://example.com", "example.com"))  # no TLS said anywhere
    assert not same_origin(_scope("http://example.com:8001", "example.com:8000"))
    assert not same_origin(_scope("http://evil.com", "evil.com"))  # a Host not in ALLOWED_HOSTS
    assert not same_origin(_scope(None, "example.com"))
    assert not same_origin(_scope("http://example.com", None))
    assert same_origin(_scope("https://app.example.org", "example.com"))
    assert same_origin(_scope("https://a.example.net", "example.com"))
    assert not same_origin(_scope("https://app.example.org:8443", "example.com"))
    assert not same_origin(_scope("http://a.example.net", "example.com"))
