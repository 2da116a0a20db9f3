"""``maskwright run``: the quick start. One command, every process, Ctrl-C stops them all.

Processes (all bound to 127.0.0.1): PostgreSQL and Redis from the wheels (unless DATABASE_URL
and REDIS_URL point at real servers; Redis keeps an append-only file, so queued work survives a
crash), the ASGI server (uvicorn), and two Celery workers: one for the ``interactive`` queue
(clicks), one for ``batch`` and ``default`` (jobs, exports), so a long job never delays a click.
A worker or web server that dies is started again (:mod:`.supervise`); only a database's death
stops the run. Everything is written under MASKWRIGHT_HOME (default ``.maskwright/`` in
the checkout), so data survives restarts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from .reaping import reap_orphans
from .services import (
    DEFAULT_PG_PORT,
    DEFAULT_REDIS_PORT,
    PG_PORT_ENV,
    REDIS_PORT_ENV,
    stop_processes,
)
from .supervise import Supervised

REPO = Path(__file__).resolve().parents[2]


def _home() -> Path:
    return Path(os.environ.get("MASKWRIGHT_HOME", REPO / ".maskwright")).resolve()


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # our own loopback URL
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _wait_worker(
    name: str, env: dict[str, str], proc: subprocess.Popen, timeout: float = 120
) -> None:
    """Block until the Celery worker answers a ping, so the first click finds it ready."""
    os.environ.update(env)
    import django
    from celery import current_app as app

    django.setup()  # loads the project's settings, and with them its Celery app (the current one)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker {name} exited with code {proc.returncode}")
        if app.control.ping(destination=[name], timeout=1.0):
            return
    raise RuntimeError(f"the Celery worker {name} did not answer within {timeout:.0f} s")


def web_argv(host: str, port: int) -> list[str]:
    """The quick start's web server (the tests start it with this argv too).

    ``--no-proxy-headers``: uvicorn otherwise believes X-Forwarded-For from 127.0.0.1, and
    here every local process is 127.0.0.1, so any of them could name a new address for each
    sign-in guess and never meet the per-address limit. Behind a real proxy (docker/web.Dockerfile)
    the proxy headers are read on purpose.
    """
    return [
        _bin("uvicorn"),
        "config.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
        "--no-proxy-headers",
    ]


# (role, queues): clicks get a worker of their own; jobs and exports share the other.
WORKERS = (("interactive", "interactive"), ("batch", "batch,default"))


def _worker(role: str, queues: str, env: dict[str, str], logs: Path) -> Supervised:
    name = f"{role}-{os.getpid()}@{socket.gethostname()}"
    argv = [
        _bin("celery"),
        "-A",
        "config.celery_app",
        "worker",
        "-Q",
        queues,
        "-P",
        "solo",
        "-n",
        name,
        "-l",
        "info",
    ]
    return Supervised(
        f"worker {name}",
        argv,
        env,
        logs / f"worker-{role}.log",
        say=lambda line: print(line, flush=True),
    )


def run_platform(*, host: str, port: int, demo: bool) -> int:
    home = _home()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MASKWRIGHT_HOME=str(home))
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Let the browser reach us by whichever loopback name it uses.
    env.setdefault("DJANGO_ALLOWED_HOSTS", f"127.0.0.1,localhost,{host}")
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    with ExitStack() as stack:
        services = None
        if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
            from .services import LocalServices

            services = LocalServices(
                home,
                pg_port=int(env.get(PG_PORT_ENV) or DEFAULT_PG_PORT),
                redis_port=int(env.get(REDIS_PORT_ENV) or DEFAULT_REDIS_PORT),
            )
            print("starting PostgreSQL and Redis ...", flush=True)
            stack.enter_context(services)
            env["DATABASE_URL"], env["REDIS_URL"] = services.database_url, services.redis_url
        py = sys.executable
        subprocess.run(
            [py, str(REPO / "manage.py"), "migrate", "--no-input", "-v", "0"], env=env, check=True
        )
        if demo:
            out = subprocess.run(
                [_bin("maskwright"), "demo"], env=env, check=True, capture_output=True, text=True
            )
            print(out.stdout.strip(), flush=True)
        logs = home / "logs"
        # The web server is restarted like a worker: a crash in one request (a native library
        # fault) must not stop the workers and databases with it.
        web = Supervised(
            "web server",
            web_argv(host, port),
            env,
            logs / "web.log",
            say=lambda line: print(line, flush=True),
        )
        children = [web, *(_worker(role, queues, env, logs) for role, queues in WORKERS)]
        for child in children:
            stack.callback(child.close)
            child.start()
        # the current processes, looked up at stop time (restarts replace them)
        stack.callback(lambda: stop_processes([c.proc for c in children if c.proc is not None]))
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        # a web server that cannot start stops the run
        _wait_http(f"http://{host}:{port}/healthz", web.proc)
        for worker in children[1:]:
            _wait_worker(worker.argv[worker.argv.index("-n") + 1], env, worker.proc)
        print(f"\nMaskwright is running: http://{host}:{port}/   (logs in {logs})", flush=True)
        print("Press Ctrl-C to stop every process it started.", flush=True)
        while not stop_requested:
            dead = services.dead() if services is not None else None
            if dead:
                print(f"{dead}; stopping", flush=True)
                break
            for child in children:
                child.poll()
            time.sleep(0.25)
        print("stopping ...", flush=True)
    # Everything we started has been waited for; what is left are orphans of our children
    # (services.adopt_orphans made us their reaper): collect them, or they stay <defunct>.
    reap_orphans()
    print("stopped", flush=True)
    return 0
