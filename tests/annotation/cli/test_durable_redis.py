"""The quick start's Redis keeps an append-only file (fsync every second): a message queued
just before a kill -9 of the whole tree is still there after the restart. Before, Redis ran
with ``appendonly no`` and only a snapshot a minute, so a queued job's message was lost."""

from __future__ import annotations

import os
import signal
import time

import redis

from annotation.cli.services import LocalServices, free_port


def test_a_key_written_just_before_redis_is_killed_survives_the_restart(tmp_path):
    home = tmp_path / "home"
    services = LocalServices(home, pg_port=free_port(), redis_port=free_port())
    with services:
        client = redis.Redis.from_url(services.redis_url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        client.lpush("queued", "job 7")
        time.sleep(1.5)  # the AOF is fsynced once a second; no snapshot is due (60 s)
        os.kill(services._redis.pid, signal.SIGKILL)
        services._redis.wait()
        assert services.dead() and "Redis exited" in services.dead()
        client.close()
    with LocalServices(home, pg_port=free_port(), redis_port=free_port()) as again:
        client = redis.Redis.from_url(again.redis_url, decode_responses=True)
        assert client.lrange("queued", 0, -1) == ["job 7"]
        client.close()


def test_the_test_runner_keeps_its_redis_in_memory(tmp_path):
    with LocalServices(
        tmp_path / "home", pg_port=free_port(), redis_port=free_port(), durable=False
    ) as services:
        client = redis.Redis.from_url(services.redis_url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
