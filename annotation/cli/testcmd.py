"""``maskwright test``: the README's test command, the same one CI runs.

With DATABASE_URL and REDIS_URL set (CI starts Debian's servers), it runs pytest against them.
Without, it starts embedded PostgreSQL and Redis on free ports in a temporary folder, runs
pytest, and stops them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pytest(args: list[str], env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "pytest", *args]
    return subprocess.call(cmd, cwd=REPO, env=env)


def run_tests(args: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    if env.get("DATABASE_URL") and env.get("REDIS_URL"):
        return _pytest(args, env)
    from .services import LocalServices, free_port

    # SIGTERM (a CI timeout, a closed terminal) must still stop the servers: turn it into an
    # exception so the `with` block below unwinds; atexit alone does not run on signals.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    with tempfile.TemporaryDirectory(prefix="maskwright-test-") as home:
        services = LocalServices(
            Path(home), pg_port=free_port(), redis_port=free_port(), durable=False
        )
        with services:
            env["DATABASE_URL"] = services.database_url
            env["REDIS_URL"] = services.redis_url
            print(f"test servers: {services.database_url} {services.redis_url}", flush=True)
            return _pytest(args, env)
