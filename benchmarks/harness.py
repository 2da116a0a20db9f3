"""What every platform benchmark needs: a scratch database, a media folder, a real server.

The benchmark never touches the platform's own data: it creates a database named
``maskwright_bench_<pid>`` on the configured server (or on embedded servers it starts), migrates
it, and drops it at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BenchEnv:
    env: dict[str, str]
    media: Path
    scratch: Path

    @contextmanager
    def server(self) -> Iterator[tuple[str, psutil.Process]]:
        """A real uvicorn process on a free loopback port: (base URL, its process)."""
        from annotation.cli.services import free_port, stop_processes

        port = free_port()
        log = open(self.scratch / f"web-{port}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "uvicorn"),
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "off",
                "--no-access-log",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            (self.scratch / f"web-{port}.log").read_text()[-2000:]
                        ) from None
                    time.sleep(0.2)
            yield url, psutil.Process(proc.pid)
        finally:
            stop_processes([proc], timeout=15)
            log.close()


def timed_gets(url: str, token: str, n: int, warmup: int) -> tuple[list[float], bytes]:
    """``n`` timed GETs of ``url`` (token auth) after ``warmup`` untimed ones (connections and
    caches warm up): milliseconds each, and the last body. A status other than 200 fails."""
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    times: list[float] = []
    body = b""
    for i in range(warmup + n):
        started = time.perf_counter()
        with urllib.request.urlopen(req) as resp:  # our loopback server
            body = resp.read()
            assert resp.status == 200, (url, resp.status)
        if i >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times, body


def peak_rss_mb(proc: psutil.Process) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return proc.memory_info().rss / 2**20


@contextmanager
def bench_environment() -> Iterator[BenchEnv]:
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="maskwright-bench-")))
        env = dict(os.environ)
        if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
            from annotation.cli.services import LocalServices, free_port

            services = stack.enter_context(
                LocalServices(scratch / "servers", pg_port=free_port(), redis_port=free_port())
            )
            env["DATABASE_URL"], env["REDIS_URL"] = services.database_url, services.redis_url
        import dj_database_url
        import psycopg

        base = env["DATABASE_URL"]
        cfg = dj_database_url.parse(base)
        name = f"maskwright_bench_{os.getpid()}"
        admin = (
            f"postgresql://{cfg['USER']}{':' + cfg['PASSWORD'] if cfg.get('PASSWORD') else ''}"
            f"@{cfg['HOST']}:{cfg['PORT']}/postgres"
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        stack.callback(drop)
        media = scratch / "home" / "media"  # what settings derive from MASKWRIGHT_HOME
        env.update(
            DATABASE_URL=base.rsplit("/", 1)[0] + "/" + name,
            MASKWRIGHT_HOME=str(scratch / "home"),
            DJANGO_SETTINGS_MODULE="config.settings.local",
            MASKWRIGHT_LOG_LEVEL="WARNING",
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield BenchEnv(env=env, media=media, scratch=scratch)
