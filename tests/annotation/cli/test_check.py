"""``maskwright check`` looks where ``maskwright run`` put the servers: the same port variables,
and every failure names the address it tried."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _check(home, **ports: str) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(ports, DJANGO_SETTINGS_MODULE="config.settings.local")
    env["MASKWRIGHT_HOME"] = str(home)
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "annotation.cli.main", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return out.stdout + out.stderr, time.monotonic() - started


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [name])


def test_check_reads_the_port_variables_of_run(tmp_path):
    redis_port = str(urlsplit(os.environ["REDIS_URL"]).port)
    pg_port = str(urlsplit(os.environ["DATABASE_URL"]).port)
    output, _ = _check(tmp_path, MASKWRIGHT_PG_PORT=pg_port, MASKWRIGHT_REDIS_PORT=redis_port)
    # The test servers' Redis answers on the port given; the database line names its port
    # whether or not a `maskwright` database exists on that server.
    assert _line(output, "redis").startswith("ok"), output
    assert f"127.0.0.1:{redis_port}" in _line(output, "redis")
    assert f"127.0.0.1:{pg_port}" in _line(output, "database"), output


def test_check_with_nothing_listening_names_the_addresses_and_returns_soon(tmp_path):
    with socket.socket() as a, socket.socket() as b:
        # Ports bound but not listening: connections are refused at once.
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        pg, rd = a.getsockname()[1], b.getsockname()[1]
        output, seconds = _check(
            tmp_path, MASKWRIGHT_PG_PORT=str(pg), MASKWRIGHT_REDIS_PORT=str(rd)
        )
    assert _line(output, "database").startswith("FAIL")
    assert f"no PostgreSQL at 127.0.0.1:{pg}" in output
    assert f"no Redis at 127.0.0.1:{rd}" in output
    assert "MASKWRIGHT_PG_PORT" in output and "MASKWRIGHT_REDIS_PORT" in output
    assert _line(output, "workers").startswith("FAIL")
    assert "3 check(s) failed" in output
    # It used to take 17 s of connection-pool warnings; the bound is loose on purpose.
    assert seconds < 60
