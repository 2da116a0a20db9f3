"""``maskwright check``: is everything the platform needs up?"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def _database() -> str:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        version = cur.fetchone()[0].split(",")[0]
    pending = MigrationExecutor(connection).migration_plan(
        MigrationExecutor(connection).loader.graph.leaf_nodes()
    )
    if pending:
        raise RuntimeError(f"{len(pending)} migrations not applied (run: python manage.py migrate)")
    return f"{version} at {connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}"


def _redis() -> str:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    started = time.perf_counter()
    client.ping()
    ms = (time.perf_counter() - started) * 1000
    return f"Redis {client.info('server')['redis_version']} ping {ms:.1f} ms"


def _workers() -> str:
    from celery import current_app as app  # the project's app: Django's settings loaded it

    inspect = app.control.inspect(timeout=3.0)
    queues = inspect.active_queues() or {}
    if not queues:
        raise RuntimeError(
            "no Celery worker answered (start one: celery -A config.celery_app worker)"
        )
    served = {q["name"] for qs in queues.values() for q in qs}
    missing = {"interactive", "batch", "default"} - served
    desc = ", ".join(
        f"{name} [{', '.join(sorted(q['name'] for q in qs))}]"
        for name, qs in sorted(queues.items())
    )
    if missing:
        raise RuntimeError(f"no worker serves queue(s) {sorted(missing)}; workers: {desc}")
    return desc


def _storage() -> str:
    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    probe = root / ".check"
    probe.write_text("ok")
    probe.unlink()
    return str(root)


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("database", _database),
    ("redis", _redis),
    ("workers", _workers),
    ("storage", _storage),
]


def run_checks() -> int:
    failed = 0
    for name, check in CHECKS:
        try:
            detail = check()
            print(f"ok    {name:9} {detail}")
        except Exception as exc:  # noqa: BLE001 (report every failure, keep checking)
            failed += 1
            print(f"FAIL  {name:9} {exc}")
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0
