"""A real deployment: every secret and address comes from the environment."""

from __future__ import annotations

from .base import *
from .base import HOME

DEBUG = False
STATIC_ROOT = HOME / "static"
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set in production")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
