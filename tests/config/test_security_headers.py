"""HTML pages carry a Content-Security-Policy that allows this origin only (no inline script
or style), the annotation socket on the page's own host, and the usual hardening headers."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import make_world

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    out = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def _hardened(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_the_app_login_and_admin_pages_have_a_strict_policy():
    make_world()
    client = Client()
    pages = [client.get("/login/"), client.get("/admin/login/")]
    client.login(username="owner", password="pw-12345678")
    pages += [client.get("/"), client.get("/projects/1")]
    for page in pages:
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        policy = _policy(page)
        assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
        assert not any("unsafe" in v for values in policy.values() for v in values)
        _hardened(page)


def test_the_policy_names_the_host_the_page_was_served_from(settings):
    settings.ALLOWED_HOSTS = ["annotate.example.org"]
    page = Client(HTTP_HOST="annotate.example.org").get("/login/")
    assert _policy(page)["connect-src"] == [
        "'self'",
        "ws://annotate.example.org",
        "wss://annotate.example.org",
    ]


def test_json_answers_have_no_policy_and_the_docs_page_has_one_it_satisfies():
    w = make_world()
    client = Client()
    client.login(username="owner", password="pw-12345678")
    answer = client.get(f"/api/projects/{w.project.id}/")
    assert answer.status_code == 200 and "Content-Security-Policy" not in answer
    _hardened(answer)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and _policy(docs)["script-src"] == ["'self'"]
    html = docs.content.decode()
    # Swagger UI from our own static files, its start-up script a file too: nothing inline,
    # nothing from a CDN, so the policy holds on this page as on the others
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts), (
        scripts
    )
    assert "cdn." not in html and "//unpkg" not in html
    sources = re.findall(r'src="([^"]+)"', html)
    assert all(src.startswith("/") for src in sources), sources
    for src in sources:
        assert client.get(src.replace("&amp;", "&")).status_code == 200, src
