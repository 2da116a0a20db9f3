"""Tests: real Postgres and Redis (from DATABASE_URL / REDIS_URL), fast password hashing."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from config.env import env_str

from .base import *

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _media_root() -> Path:
    """The workers a test starts are handed the test process's folder; a process that has to
    make its own removes it when it exits (a test run used to leave one per process in /tmp)."""
    given = env_str("MASKWRIGHT_TEST_MEDIA", "")
    if given:
        return Path(given)
    made = tempfile.mkdtemp(prefix="maskwright-media-")
    owner = os.getpid()
    # forked children (uvicorn, Celery pool) inherit the handler: only the creator deletes
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(made, ignore_errors=True))
    return Path(made)


MEDIA_ROOT = _media_root()
ALLOWED_HOSTS = ["*"]
# No pool in tests: pooled connections would stay open, and the test database cannot be
# dropped while any session is on it. Connections close after each use.
DATABASES["default"]["OPTIONS"] = {}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Tests launch proposal jobs with the tiny random-weight backbone.
MASKWRIGHT["BATCH_BACKBONES"] = [*MASKWRIGHT["BATCH_BACKBONES"], "tiny-effnet"]
