"""A real deployment: every secret and address comes from the environment."""
from __future__ import annotations

from .base import *  # noqa: F403
from .base import HOME

DEBUG = False
STATIC_ROOT = HOME / "static"  # noqa: F405
if not SECRET_KEY:  # noqa: F405
    raise RuntimeError("DJANGO_SECRET_KEY must be set in production")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
