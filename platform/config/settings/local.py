"""A developer's machine and the quick start: a secret kept in the data folder; debug only
when asked for (``MASKWRIGHT_DEBUG=1``)."""

from __future__ import annotations

import secrets

from config.env import env_bool

from .base import *
from .base import HOME

# Off unless asked for: the quick start is often reachable from a network, and Django's debug
# pages show settings, paths and tracebacks to anyone. Static files do not need it: WhiteNoise
# serves them from the finders (WHITENOISE_USE_FINDERS in base.py) with DEBUG off too.
DEBUG = env_bool("MASKWRIGHT_DEBUG", False)


def _local_secret_key() -> str:
    # A key generated once per data folder: sessions survive restarts, and no key is in git.
    path = HOME / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if not SECRET_KEY:
    SECRET_KEY = _local_secret_key()
