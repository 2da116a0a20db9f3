"""The client address the sign-in throttle counts is the socket's, not a header's: the quick
start's uvicorn (started here with the argv ``maskwright run`` uses) must not believe
X-Forwarded-For from a loopback client, or any local process could name a fresh address per
guess."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from annotation.cli.run import web_argv
from annotation.segmentation.interactive import dispatch
from annotation.users.models import User
from tests.conftest import _wait_for_other_sessions_to_end, uvicorn_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

PASSWORD = "pw-12345678"


def _clear_counts() -> None:
    client = dispatch.redis_client()
    for key in client.scan_iter("mw-cache:*login-fail:*", count=500):
        client.delete(key)


@pytest.fixture
def server(django_db_blocker, tmp_path):
    _clear_counts()
    try:
        with uvicorn_server(tmp_path) as (url, _):
            yield url
    finally:
        _clear_counts()
        with django_db_blocker.unblock():
            _wait_for_other_sessions_to_end()


def _sign_in(url: str, password: str, **headers: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/auth/token/",
        data=json.dumps({"username": "alice", "password": password}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_quick_start_web_server_reads_no_proxy_headers():
    assert "--no-proxy-headers" in web_argv("127.0.0.1", 8000)


def test_x_forwarded_for_does_not_escape_the_per_address_limit(server):
    User.objects.create_user(username="alice", password=PASSWORD)
    for _ in range(10):
        assert _sign_in(server, "wrong") == 401
    assert _sign_in(server, PASSWORD) == 429
    # another address claimed in a header is still this client's address
    assert _sign_in(server, PASSWORD, **{"X-Forwarded-For": "5.6.7.8"}) == 429
    assert (
        _sign_in(
            server,
            PASSWORD,
            **{"X-Forwarded-For": "5.6.7.8", "X-Real-IP": "5.6.7.8", "Forwarded": "for=5.6.7.8"},
        )
        == 429
    )
