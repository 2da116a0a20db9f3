"""Reads about users."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from rest_framework.authtoken.models import Token


def token_user(key: str) -> Any | None:
    """The active user an API token (``Authorization: Token <key>``) names, or None."""
    token = Token.objects.filter(key=key, user__is_active=True).select_related("user").first()
    return token.user if token is not None else None


def session_user(session_key: str) -> Any | None:
    """The user of a session cookie's value if it is a signed-in session of an active user,
    checked as Django's AuthenticationMiddleware checks it (the password-change hash
    included), or None."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    return user if user.is_authenticated else None
