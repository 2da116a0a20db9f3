"""``maskwright run``: the quick start. One command, every process, Ctrl-C stops them all.

Processes (all bound to 127.0.0.1): PostgreSQL and Redis from the wheels (unless DATABASE_URL
and REDIS_URL point at real servers), the ASGI server (uvicorn), and one Celery worker serving
the ``interactive``, ``batch`` and ``default`` queues. Everything is written under
MASKWRIGHT_HOME (default ``.maskwright/`` in the checkout), so data survives restarts.
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

from .services import stop_processes

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
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (our own loopback URL)
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _wait_worker(name: str, env: dict[str, str], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Block until the Celery worker answers a ping, so the first click finds it ready."""
    os.environ.update(env)
    from config.celery_app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with code {proc.returncode}")
        if app.control.ping(destination=[name], timeout=1.0):
            return
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f} s")


def run_platform(*, host: str, port: int, demo: bool) -> int:
    home = _home()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MASKWRIGHT_HOME=str(home))
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Let the browser reach us by whichever loopback name it uses.
    env.setdefault("DJANGO_ALLOWED_HOSTS", f"127.0.0.1,localhost,{host}")
    procs: list[subprocess.Popen] = []
    stop_requested = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    with ExitStack() as stack:
        if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
            from .services import LocalServices

            services = LocalServices(
                home,
                pg_port=int(env.get("MASKWRIGHT_PG_PORT", "55432")),
                redis_port=int(env.get("MASKWRIGHT_REDIS_PORT", "56379")),
            )
            print("starting PostgreSQL and Redis ...", flush=True)
            stack.enter_context(services)
            env["DATABASE_URL"], env["REDIS_URL"] = services.database_url, services.redis_url
        stack.callback(stop_processes, procs)
        py = sys.executable
        subprocess.run([py, str(REPO / "manage.py"), "migrate", "--no-input", "-v", "0"], env=env, check=True)
        if demo:
            out = subprocess.run([_bin("maskwright"), "demo"], env=env, check=True, capture_output=True, text=True)
            print(out.stdout.strip(), flush=True)
        logs = home / "logs"
        web_log = open(logs / "web.log", "ab")  # noqa: SIM115 (closed by the ExitStack)
        worker_log = open(logs / "worker.log", "ab")  # noqa: SIM115
        stack.callback(web_log.close)
        stack.callback(worker_log.close)
        web = subprocess.Popen(
            [_bin("uvicorn"), "config.asgi:application", "--host", host, "--port", str(port),
             "--lifespan", "off", "--no-access-log"],
            env=env, stdout=web_log, stderr=subprocess.STDOUT,
        )
        procs.append(web)
        worker_name = f"local-{os.getpid()}@{socket.gethostname()}"
        worker = subprocess.Popen(
            [_bin("celery"), "-A", "config.celery_app", "worker", "-Q", "interactive,batch,default",
             "-P", "solo", "-n", worker_name, "-l", "info"],
            env=env, stdout=worker_log, stderr=subprocess.STDOUT,
        )
        procs.append(worker)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        _wait_http(f"http://{host}:{port}/healthz", web)
        _wait_worker(worker_name, env, worker)
        print(f"\nMaskwright is running: http://{host}:{port}/   (logs in {logs})", flush=True)
        print("Press Ctrl-C to stop every process it started.", flush=True)
        while not stop_requested:
            for proc in procs:
                if proc.poll() is not None:
                    print(f"process {proc.args[0]} exited with {proc.returncode}; stopping", flush=True)
                    stop_requested = True
            time.sleep(0.5)
        print("stopping ...", flush=True)
    print("stopped", flush=True)
    return 0
