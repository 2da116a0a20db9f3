"""A developer's machine and the quick start: debug on, a secret kept in the data folder."""
from __future__ import annotations

import secrets

from .base import *  # noqa: F403
from .base import HOME

DEBUG = True


def _local_secret_key() -> str:
    # A key generated once per data folder: sessions survive restarts, and no key is in git.
    path = HOME / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if not SECRET_KEY:  # noqa: F405
    SECRET_KEY = _local_secret_key()
