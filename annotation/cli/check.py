"""``maskwright check``: is everything the platform needs up?"""

from __future__ import annotations

import time
from collections.abc import Callable


def _where(url: str) -> str:
    """host:port of a server URL, without its credentials (the message may be shared)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _database() -> str:
    import psycopg
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    # One plain connection first, with a short timeout: the pool behind Django's connection
    # retries for its full timeout and logs a warning per try, which buried the answer.
    db = connection.settings_dict
    where = f"{db['HOST']}:{db['PORT']}"
    try:
        psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(
            f"no PostgreSQL at {where} ({first}); set DATABASE_URL, or "
            f"MASKWRIGHT_PG_PORT to the port `maskwright run` used"
        ) from None
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        version = cur.fetchone()[0].split(",")[0]
    pending = MigrationExecutor(connection).migration_plan(
        MigrationExecutor(connection).loader.graph.leaf_nodes()
    )
    if pending:
        raise RuntimeError(
            f"{len(pending)} migrations not applied to {db['NAME']} at {where} "
            "(run: python manage.py migrate)"
        )
    return f"{version} at {where}"


def _redis() -> str:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    started = time.perf_counter()
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise RuntimeError(
            f"no Redis at {_where(settings.REDIS_URL)} ({exc}); set REDIS_URL, or "
            f"MASKWRIGHT_REDIS_PORT to the port `maskwright run` used"
        ) from None
    ms = (time.perf_counter() - started) * 1000
    version = client.info("server")["redis_version"]
    return f"Redis {version} at {_where(settings.REDIS_URL)} ping {ms:.1f} ms"


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
    """The media store (local folder or bucket) takes a probe and gives it back; a wrong
    endpoint, a missing bucket or refused credentials read as one line, never a traceback."""
    from annotation.common import media

    return media.check()


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("database", _database),
    ("redis", _redis),
    ("workers", _workers),
    ("storage", _storage),
]


def run_checks() -> int:
    failed = 0
    failed_redis = False
    for name, check in CHECKS:
        if name == "workers" and failed_redis:
            # Celery would retry the broker for a long while before saying the same thing.
            failed += 1
            print(f"FAIL  {name:9} not asked: workers are reached through Redis")
            continue
        try:
            detail = check()
            print(f"ok    {name:9} {detail}")
        except Exception as exc:  # noqa: BLE001 (report every failure, keep checking)
            failed += 1
            failed_redis = failed_redis or name == "redis"
            print(f"FAIL  {name:9} {exc}")
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0
