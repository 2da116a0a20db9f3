"""The quick start, as a person runs it: `maskwright run` on embedded servers, log in, Ctrl-C.

Runs the real command in a subprocess with its own data folder and ports, checks the demo
project over HTTP with the demo login, runs `maskwright check` against it, then sends SIGINT
and checks that every process it started is gone.
"""

from __future__ import annotations

import json
import time

import psutil

from tests.annotation.cli.launch import launch, login


def test_quick_start_serves_the_demo_and_ctrl_c_stops_everything(tmp_path):
    run = launch(tmp_path)
    proc, lines = run.proc, run.lines
    started: set[int] = set()
    try:
        base = run.base
        assert f"{base}/" in "".join(lines) and "login demo / demo" in "".join(lines)
        started = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        # postgres daemonises (pg_ctl), so find it by its data folder
        started |= {
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        }

        opener, _ = login(base)
        projects = json.loads(opener.open(f"{base}/api/projects/").read())
        demo = next(p for p in projects if p["name"] == "Demo")
        datasets = json.loads(opener.open(f"{base}/api/projects/{demo['id']}/datasets/").read())
        assert datasets[0]["image_count"] >= 4
        assert b'<main id="app"' in opener.open(f"{base}/").read()

        check = run.check()
        assert check.returncode == 0, check.stdout + check.stderr
        assert "all checks passed" in check.stdout and "interactive" in check.stdout
    finally:
        out = run.stop()
    assert proc.returncode == 0, out
    assert "stopped" in out

    # PostgreSQL's backends end a moment after pg_ctl returns; on a loaded machine, seconds
    def alive() -> list[int]:
        return [
            pid
            for pid in started
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: " ".join(psutil.Process(pid).cmdline()[:4]) for pid in alive()}
    assert not left, f"left running: {left}"
