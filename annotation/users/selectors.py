"""Reads about users."""
from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from rest_framework.authtoken.models import Token


def token_valid(key: str) -> bool:
    """Whether an API token (``Authorization: Token <key>``) names an active user."""
    return Token.objects.filter(key=key, user__is_active=True).exists()


def session_valid(session_key: str) -> bool:
    """Whether a session cookie's value is a signed-in session of an active user, checked as
    Django's AuthenticationMiddleware checks it (the password-change hash included)."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(request).is_authenticated
