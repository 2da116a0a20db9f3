"""Only an owner grants or takes away ownership; managers manage the other members; a project
never loses its last owner."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.projects.models import Membership, Role
from tests.factories import make_world

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _roles(project) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


def test_a_manager_cannot_take_the_project():
    w = make_world()
    manager = _client(w.users["manager"])
    members = f"/api/projects/{w.project.id}/members/"
    owner_row = w.project.memberships.get(user__username="owner")
    before = _roles(w.project)
    for body in (
        {"username": "manager", "role": "owner"},  # make themself owner
        {"username": "annotator", "role": "owner"},  # make someone else owner
        {"username": "outsider", "role": "owner"},  # a new member as owner
        {"username": "owner", "role": "manager"},  # demote the owner
        {"username": "owner", "role": "annotator"},
    ):
        response = manager.post(members, body, format="json")
        assert response.status_code == 403, (body, response.json())
        assert response.json()["error"]["code"] == "forbidden"
    response = manager.delete(f"{members}{owner_row.id}/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert _roles(w.project) == before

    # the other members are still the manager's to manage
    assert (
        manager.post(
            members, {"username": "annotator", "role": "reviewer"}, format="json"
        ).status_code
        == 201
    )
    assert (
        manager.post(
            members, {"username": "outsider", "role": "annotator"}, format="json"
        ).status_code
        == 201
    )
    assert (
        manager.post(
            members, {"username": "reviewer", "role": "manager"}, format="json"
        ).status_code
        == 201
    )
    removed = w.project.memberships.get(user__username="annotator2")
    assert manager.delete(f"{members}{removed.id}/").status_code == 204
    assert _roles(w.project) == {
        "owner": "owner",
        "manager": "manager",
        "reviewer": "manager",
        "annotator": "reviewer",
        "outsider": "annotator",
    }


def test_an_owner_hands_over_and_the_last_owner_stays():
    w = make_world()
    owner = _client(w.users["owner"])
    members = f"/api/projects/{w.project.id}/members/"
    # the last owner can neither step down nor be removed
    response = owner.post(members, {"username": "owner", "role": "manager"}, format="json")
    assert (
        response.status_code == 400 and "at least one owner" in response.json()["error"]["message"]
    )
    own_row = w.project.memberships.get(user__username="owner")
    assert owner.delete(f"{members}{own_row.id}/").status_code == 400

    # an owner makes the manager owner, then steps down; the new owner may remove the old one
    assert (
        owner.post(members, {"username": "manager", "role": "owner"}, format="json").status_code
        == 201
    )
    assert (
        owner.post(members, {"username": "owner", "role": "manager"}, format="json").status_code
        == 201
    )
    new_owner = _client(w.users["manager"])
    assert new_owner.delete(f"{members}{own_row.id}/").status_code == 204
    assert list(
        Membership.objects.filter(project=w.project, role=Role.OWNER).values_list(
            "user__username", flat=True
        )
    ) == ["manager"]
