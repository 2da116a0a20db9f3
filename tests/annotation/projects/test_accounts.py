"""Owners and managers create accounts from the project page: a new user with a password
Django's validators accept, added with a role in one step; nothing is left behind on a refusal,
and nothing secret is echoed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.projects.models import Membership
from annotation.users import services as user_services
from annotation.users.models import User
from tests.factories import make_world

pytestmark = pytest.mark.django_db

GOOD = "lantern-orchid-93"


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_owner_creates_an_annotator_who_can_sign_in():
    w = make_world()
    response = _client(w.users["owner"]).post(
        f"/api/projects/{w.project.id}/accounts/",
        {"username": "newbie", "password": GOOD, "role": "annotator"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "newbie" and body["role"] == "annotator"
    assert set(body) == {"id", "user_id", "username", "role"}  # no password, no hash
    user = User.objects.get(username="newbie")
    assert user.check_password(GOOD) and user.is_active and not user.is_staff
    assert not user.is_superuser
    token = APIClient().post(
        "/api/auth/token/", {"username": "newbie", "password": GOOD}, format="json"
    )
    assert token.status_code == 200


def test_who_may_create_accounts():
    w = make_world()
    url = f"/api/projects/{w.project.id}/accounts/"
    for i, (name, status) in enumerate(
        (("annotator", 403), ("reviewer", 403), ("outsider", 404), ("manager", 201))
    ):
        body = {"username": f"person{i}", "password": GOOD, "role": "annotator"}
        assert _client(w.users[name]).post(url, body, format="json").status_code == status, name
    assert not User.objects.filter(username__in=["person0", "person1", "person2"]).exists()


def test_a_manager_cannot_create_an_owner_and_no_account_is_left():
    w = make_world()
    response = _client(w.users["manager"]).post(
        f"/api/projects/{w.project.id}/accounts/",
        {"username": "boss", "password": GOOD, "role": "owner"},
        format="json",
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="boss").exists()
    response = _client(w.users["owner"]).post(
        f"/api/projects/{w.project.id}/accounts/",
        {"username": "boss", "password": GOOD, "role": "owner"},
        format="json",
    )
    assert response.status_code == 201
    assert Membership.objects.get(user__username="boss").role == "owner"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"username": "short", "password": "abc", "role": "annotator"}, "too short"),
        ({"username": "common", "password": "password123", "role": "annotator"}, "too common"),
        ({"username": "digits", "password": "84736251907", "role": "annotator"}, "numeric"),
        ({"username": "bad name!", "password": GOOD, "role": "annotator"}, "username"),
        ({"username": "x" * 151, "password": GOOD, "role": "annotator"}, "username"),
        ({"username": "long", "password": "p" * 129, "role": "annotator"}, "password"),
        ({"username": "Annotator", "password": GOOD, "role": "annotator"}, "taken"),
        ({"username": "norole", "password": GOOD, "role": "king"}, "role"),
        ({"username": "nopw", "role": "annotator"}, "password"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(body, words):
    w = make_world()
    before = User.objects.count()
    response = _client(w.users["owner"]).post(
        f"/api/projects/{w.project.id}/accounts/", body, format="json"
    )
    assert response.status_code == 400, response.json()
    assert words in str(response.json()), response.json()
    assert User.objects.count() == before


def test_account_creation_is_rate_limited(monkeypatch):
    # counted per creator (a fresh user id in every test), so no count is left from others
    monkeypatch.setattr(user_services, "ACCOUNTS_PER_HOUR", 2)
    w = make_world()
    client = _client(w.users["owner"])
    url = f"/api/projects/{w.project.id}/accounts/"
    statuses = [
        client.post(
            url, {"username": f"u{i}", "password": GOOD, "role": "annotator"}, format="json"
        ).status_code
        for i in range(3)
    ]
    assert statuses == [201, 201, 429]
    assert not User.objects.filter(username="u2").exists()
