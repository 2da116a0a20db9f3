"""Sign-in throttling on every way in (token API, login page, Django admin), counted in the
Redis cache the web processes share, and a demo account that is not staff."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.segmentation.interactive import dispatch
from annotation.users.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345678"


@pytest.fixture(autouse=True)
def fresh_counts():
    """Failure counts live in Redis across tests: start and end each test with none."""

    def clear():
        client = dispatch.redis_client()
        for key in client.scan_iter("mw-cache:*login-fail:*", count=500):
            client.delete(key)

    clear()
    yield
    clear()


@pytest.fixture
def alice():
    return User.objects.create_user(username="alice", password=PASSWORD, is_staff=True)


def _token(address: str, password: str, username: str = "alice"):
    return Client(REMOTE_ADDR=address).post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def _form(path: str, address: str, password: str, username: str = "alice"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def test_token_api_answers_429_after_ten_failures_from_an_address(alice):
    for _ in range(10):
        assert _token("10.0.0.1", "wrong").status_code == 401
    refused = _token("10.0.0.1", "wrong")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 15 * 60
    assert refused.json()["error"]["code"] == "throttled"
    assert _token("10.0.0.1", PASSWORD).status_code == 429  # the right password too: no oracle
    # another address still signs in: one address cannot lock a person out
    answer = _token("10.0.0.2", PASSWORD)
    assert answer.status_code == 200 and answer.json()["token"]


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_login_page_and_admin_answer_429_after_ten_failures(alice, path):
    for _ in range(10):
        assert _form(path, "10.0.0.1", "wrong").status_code == 200  # the form again, with an error
    refused = _form(path, "10.0.0.1", "wrong")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert b"too many failed sign-ins" in refused.content.lower()
    assert _form(path, "10.0.0.1", PASSWORD).status_code == 429
    answer = _form(path, "10.0.0.2", PASSWORD)
    assert answer.status_code == 302  # signed in (a wrong password shows the form again)


def test_failures_count_across_the_ways_in(alice):
    """An attacker cannot get ten tries on each door."""
    for i in range(10):
        path = ("/login/", "/admin/login/")[i % 2]
        _form(path, "10.0.0.1", "wrong") if i < 8 else _token("10.0.0.1", "wrong")
    assert _token("10.0.0.1", "wrong").status_code == 429
    assert _form("/login/", "10.0.0.1", "wrong").status_code == 429


def test_guesses_spread_over_addresses_lock_the_username_at_its_higher_limit(alice):
    for i in range(30):
        assert _token(f"10.1.0.{i}", "wrong").status_code == 401
    assert _token("10.2.0.1", PASSWORD).status_code == 429
    # other accounts are not affected
    User.objects.create_user(username="bob", password=PASSWORD)
    assert _token("10.2.0.1", PASSWORD, username="bob").status_code == 200


def test_unknown_usernames_count_for_the_address(alice):
    for i in range(10):
        assert _token("10.0.0.1", "wrong", username=f"nobody{i}").status_code == 401
    assert _token("10.0.0.1", PASSWORD).status_code == 429


def test_the_demo_account_is_not_staff_and_still_works():
    from annotation.cli.demo import DEMO_PASSWORD, DEMO_USER, demo_create

    demo_create()
    demo = User.objects.get(username=DEMO_USER)
    assert not demo.is_staff and not demo.is_superuser
    client = Client()
    assert client.login(username=DEMO_USER, password=DEMO_PASSWORD)
    assert client.get("/").status_code == 200
    assert [p["name"] for p in client.get("/api/projects/").json()] == ["Demo"]
    assert client.get("/admin/").status_code == 302  # to admin's login: not for this account
    # an install made by an older release had a staff demo account: running demo again fixes it
    User.objects.filter(pk=demo.pk).update(is_staff=True, is_superuser=True)
    demo_create()
    demo.refresh_from_db()
    assert not demo.is_staff and not demo.is_superuser
