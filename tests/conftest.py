"""Shared fixtures: users with roles, a real Celery worker, marker gating."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.s3 import s3_media, s3_server  # noqa: F401 (fixtures: the S3 server process)

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_cuda = False
    if any("gpu" in item.keywords for item in items):
        try:
            import torch

            has_cuda = torch.cuda.is_available()
        except ImportError:
            pass
    skips = {
        "gpu": (not has_cuda, "needs a CUDA device"),
        "slow": (os.environ.get("MASKWRIGHT_RUN_SLOW") != "1", "slow: set MASKWRIGHT_RUN_SLOW=1"),
        "weights": (not os.environ.get("MASKWRIGHT_WEIGHTS_DIR"), "set MASKWRIGHT_WEIGHTS_DIR"),
        "browser": (not Path("/usr/bin/chromium").exists(), "needs /usr/bin/chromium"),
    }
    config._maskwright_uses_db = any(  # type: ignore[attr-defined]
        "django_db" in item.keywords
        or "django_db_setup" in getattr(item, "fixturenames", ())
        or "live_server" in getattr(item, "fixturenames", ())
        for item in items
    )
    for item in items:
        for marker, (skip, why) in skips.items():
            if skip and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def wc():
    """A world (:func:`tests.factories.make_world`) and an API client signed in as its annotator."""
    from rest_framework.test import APIClient

    from tests.factories import make_world

    w = make_world()
    client = APIClient()
    client.force_login(w.users["annotator"])
    return w, client


@pytest.fixture
def queued(monkeypatch):
    """The predictions the annotation socket queued (requests), in order, recorded instead of
    sent: a test of the socket alone counts exactly what was queued and leaves nothing in
    the shared interactive queue for the session's worker (prefetches are dropped)."""
    from annotation.segmentation.interactive import dispatch

    sent: list[dict] = []
    monkeypatch.setattr(dispatch, "send_predict", lambda request, worker: sent.append(request))
    monkeypatch.setattr(dispatch, "send_prefetch", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "choose_worker", lambda *args, **kwargs: None)
    return sent


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, password: str = "pw-12345678"):
        return django_user_model.objects.create_user(username=username, password=password)

    return make


def _worker_env(db_name: str, media_root: str) -> dict[str, str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = (
        f"postgresql://{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@{db['HOST']}:{db['PORT']}/{db_name}"
    )
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        MASKWRIGHT_TEST_MEDIA=media_root,
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "platform"), env.get("PYTHONPATH", "")]),
    )
    return env


def start_worker(
    name: str,
    log_path: Path,
    queues: str = "interactive,batch,default",
    app: str = "config.celery_app",
) -> subprocess.Popen:
    """A real Celery worker (solo pool) named ``name@host`` on the test database; returns once
    it answers a ping. The caller stops it (``stop_processes``). ``app``: the Celery app module
    (a test module may wrap ours to change a runner in the worker)."""
    from django.conf import settings
    from django.db import connection

    env = _worker_env(connection.settings_dict["NAME"], str(settings.MEDIA_ROOT))
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                celery,
                "-A",
                app,
                "worker",
                "-Q",
                queues,
                "-P",
                "solo",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    from config.celery_app import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited: {log_path.read_text()[-3000:]}")
        replies = app.control.ping(timeout=0.5) or []
        if any(f"{name}@" in host for reply in replies for host in reply):
            return proc
    from annotation.cli.services import stop_processes

    stop_processes([proc])
    raise RuntimeError(f"celery worker not ready in 60 s: {log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def celery_worker_proc(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker (solo pool, all queues) on the test database and media folder.

    Tests that use it must commit their data (``django_db(transaction=True)``).
    """
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    proc = start_worker(f"pytest-{os.getpid()}", log_path)
    try:
        yield proc
    finally:
        from annotation.cli.services import stop_processes

        stop_processes([proc])
        with django_db_blocker.unblock():
            _wait_for_other_sessions_to_end()


class Stack:
    """The ASGI server (uvicorn, websockets included) and a Celery worker on the test data."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.log_path = log_path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextmanager
def uvicorn_server(log_dir: Path, **env_extra: str):
    """uvicorn on 127.0.0.1 (a free port) with the test settings and this test database;
    yields ``(base URL, log path)`` once ``/healthz`` answers and stops it by pid after."""
    import socket
    import urllib.request

    from django.conf import settings
    from django.db import connection

    from annotation.cli.run import web_argv
    from annotation.cli.services import stop_processes

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = log_dir / "web.log"
    env = {**_worker_env(connection.settings_dict["NAME"], str(settings.MEDIA_ROOT)), **env_extra}
    with open(log_path, "wb") as log:
        # the argv the quick start runs (annotation/cli/run.py), so the tests see what it serves
        proc = subprocess.Popen(
            web_argv("127.0.0.1", port), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"uvicorn not ready in 60 s: {log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)
        yield url, log_path
    finally:
        stop_processes([proc])


@pytest.fixture(scope="session")
def live_stack(celery_worker_proc, django_db_blocker, tmp_path_factory):
    """uvicorn (:func:`uvicorn_server`) plus the session's Celery worker: the whole click loop
    over real sockets."""
    try:
        with uvicorn_server(tmp_path_factory.mktemp("uvicorn")) as (url, log_path):
            yield Stack(url, log_path)
    finally:
        with django_db_blocker.unblock():
            _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(timeout: float = 10) -> None:
    """PostgreSQL ends a backend a moment after its client exits; the test database can only
    be dropped once the worker's backends are gone."""
    from django.db import connection

    with connection.cursor() as cur:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cur.fetchone()[0] == 0:
                return
            time.sleep(0.1)


@pytest.fixture(scope="session", autouse=True)
def _close_stray_sessions(request):
    """After the last test, end what still holds the test database (a server thread's
    connection, a worker's backend) so that pytest-django can drop it. Only in runs that use
    the database: the inference tests need none."""
    if not getattr(request.config, "_maskwright_uses_db", False):
        yield
        return
    request.getfixturevalue("django_db_setup")
    django_db_blocker = request.getfixturevalue("django_db_blocker")
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        _wait_for_other_sessions_to_end(timeout=3)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets a channel layer of its own. Why: channels_redis keeps asyncio locks
    bound to the event loop that first used them, and each async test has its own loop; a
    test whose loop ended while a consumer was inside ``receive`` (a timeout under load)
    left a locked lock that every later socket test tripped over ("bound to a different event
    loop"), turning one slow test into six failures in a CI rehearsal."""
    yield
    layers = sys.modules.get("channels.layers")  # only where a test used channels
    if layers is not None:
        layers.channel_layers.backends.clear()
