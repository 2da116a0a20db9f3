"""`maskwright run` keeps serving when a Celery worker dies, and starts it again.

Before: kill -9 of the worker made the launcher stop every process, and uvicorn's shutdown
closed every browser socket with 1012 (service restart). Now a worker is restarted with
back-off, the web server and its sockets stay up; a web server that dies is restarted too, and
only a database's death ends the run. The quick start also runs clicks and jobs on separate workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request

import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from annotation.cli.supervise import Supervised
from tests.annotation.cli.launch import launch, login


def test_a_dead_process_is_restarted_with_back_off_reset_once_it_stays_up(tmp_path):
    lines: list[str] = []
    sup = Supervised(
        "sleeper",
        ["sleep", "600"],
        dict(os.environ),
        tmp_path / "s.log",
        lines.append,
        min_backoff=1,
        max_backoff=4,
        stable_s=60,
    )
    first = sup.start()
    try:
        delays = []
        now = 1000.0
        for _ in range(4):
            os.kill(sup.proc.pid, signal.SIGKILL)
            sup.proc.wait()
            sup.poll(now)  # notices the exit, schedules the restart
            delays.append(sup.restart_at - now)
            sup.poll(sup.restart_at - 0.01)
            assert sup.proc.poll() is not None  # not yet
            now = sup.restart_at
            sup.poll(now)
            sup.started_at = now  # the test's clock, not time.monotonic()
            assert sup.proc.poll() is None
        assert delays == [1, 2, 4, 4] and sup.restarts == 4 and sup.proc.pid != first.pid
        sup.poll(now + 61)  # up for a minute: the next failure starts from 1 s again
        os.kill(sup.proc.pid, signal.SIGKILL)
        sup.proc.wait()
        sup.poll(now + 62)
        assert sup.restart_at - (now + 62) == 1
        assert "exited with code -9; restarting in 1 s" in lines[-1]
    finally:
        if sup.proc.poll() is None:
            sup.proc.kill()
            sup.proc.wait()
        sup.close()


def _login_cookie(base: str) -> str:
    _, jar = login(base)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _workers(run_pid: int) -> dict[str, int]:
    """role → pid of the run's Celery workers (``-n interactive-…`` / ``-n batch-…``)."""
    out = {}
    for child in psutil.Process(run_pid).children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "worker" in cmd and "-n" in cmd:
            out[cmd[cmd.index("-n") + 1].split("-", 1)[0]] = child.pid
    return out


def _web(run_pid: int) -> int | None:
    """pid of the run's uvicorn."""
    for child in psutil.Process(run_pid).children(recursive=True):
        try:
            if any(part.endswith("uvicorn") for part in child.cmdline()[:2]):
                return child.pid
        except psutil.Error:
            continue
    return None


def _ping(ws) -> None:
    ws.send(json.dumps({"type": "ping", "seq": 1}))
    assert json.loads(ws.recv(timeout=10))["type"] == "pong"


def test_killing_a_worker_keeps_the_web_server_and_its_sockets_and_restarts_the_worker(tmp_path):
    run = launch(tmp_path, MASKWRIGHT_INTERACTIVE_WARMUP="0")
    proc, lines, base = run.proc, run.lines, run.base
    try:
        before = _workers(proc.pid)
        assert set(before) == {"interactive", "batch"}, before
        check = run.check()
        # clicks have a worker of their own: batch work never queues in front of them
        assert re.search(r"interactive-\S+ \[[^\]]*\binteractive\b", check.stdout), check.stdout
        assert re.search(r"batch-\S+ \[batch, [^\]]*\bdefault\]", check.stdout), check.stdout

        cookie = _login_cookie(base)
        with connect(
            base.replace("http", "ws", 1) + "/ws/annotate/",
            open_timeout=10,
            additional_headers={"Cookie": cookie, "Origin": base},
        ) as ws:
            _ping(ws)
            for role in ("interactive", "batch"):
                os.kill(before[role], signal.SIGKILL)
                deadline = time.monotonic() + 60
                while (
                    _workers(proc.pid).get(role) in (None, before[role])
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.2)
                assert proc.poll() is None, "the launcher stopped: " + proc.stdout.read()
                try:
                    _ping(ws)  # the socket opened before the kill still answers
                except ConnectionClosed as exc:
                    pytest.fail(f"the socket was closed ({exc.rcvd}) when the {role} worker died")
            after = _workers(proc.pid)
        assert after["interactive"] != before["interactive"] and after["batch"] != before["batch"]
        deadline = time.monotonic() + 120
        while True:  # the restarted workers answer and serve every queue again
            check = run.check()
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert check.returncode == 0 and "all checks passed" in check.stdout, (
            check.stdout + check.stderr
        )

        # a crash of the web server itself (a native fault in a request) stops nothing else
        web = _web(proc.pid)
        os.kill(web, signal.SIGSEGV)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _web(proc.pid) not in (None, web):
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                        if answer.status == 200:
                            break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("the web server was not restarted")
        assert proc.poll() is None and _workers(proc.pid) == after
    finally:
        out = run.stop()
    lines.append(out)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert re.search(r"worker interactive-\S+ exited with code -9; restarting in 1 s", text), text
    assert re.search(r"web server exited with code -11; restarting in 1 s", text), text
    assert "stopped" in text


def test_a_dead_database_server_stops_the_run(tmp_path):
    """Nothing can be served without Redis or PostgreSQL: the launcher says which died and
    stops the rest (Ctrl-C's path), rather than restarting workers against nothing."""
    run = launch(tmp_path, "--no-demo", MASKWRIGHT_INTERACTIVE_WARMUP="0")
    proc = run.proc
    try:
        redis_server = next(
            p for p in psutil.Process(proc.pid).children(recursive=True) if "redis" in p.name()
        )
        redis_server.kill()
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert re.search(r"Redis exited with code -9 .*; stopping", out), out
    assert "stopped" in out
