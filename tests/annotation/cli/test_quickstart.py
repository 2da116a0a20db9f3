"""The quick start, as a person runs it: `maskwright run` on embedded servers, log in, Ctrl-C.

Runs the real command in a subprocess with its own data folder and ports, checks the demo
project over HTTP with the demo login, runs `maskwright check` against it, then sends SIGINT
and checks that every process it started is gone.
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from annotation.cli.services import free_port

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _login(base: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": "demo", "password": "demo", "csrfmiddlewaretoken": token, "next": "/"})
    opener.open(urllib.request.Request(f"{base}/login/", data=data.encode(), headers={"Referer": f"{base}/login/"}))
    return opener


def test_quick_start_serves_the_demo_and_ctrl_c_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    port = free_port()
    env.update(MASKWRIGHT_HOME=str(tmp_path / "home"), MASKWRIGHT_PG_PORT=str(free_port()),
               MASKWRIGHT_REDIS_PORT=str(free_port()))
    proc = subprocess.Popen([str(BIN / "maskwright"), "run", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started: set[int] = set()
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Maskwright is running" in line:
                break
        else:
            pytest.fail("quick start did not come up: " + "".join(lines))
        assert any("Maskwright is running" in line for line in lines), "".join(lines)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/" in "".join(lines) and "login demo / demo" in "".join(lines)
        started = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        # postgres daemonises (pg_ctl), so find it by its data folder
        started |= {p.pid for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])}

        opener = _login(base)
        projects = json.loads(opener.open(f"{base}/api/projects/").read())
        demo = next(p for p in projects if p["name"] == "Demo")
        datasets = json.loads(opener.open(f"{base}/api/projects/{demo['id']}/datasets/").read())
        assert datasets[0]["image_count"] >= 4
        assert b"<main id=\"app\"" in opener.open(f"{base}/").read()

        check_env = dict(env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{env['MASKWRIGHT_PG_PORT']}/maskwright",
                         REDIS_URL=f"redis://127.0.0.1:{env['MASKWRIGHT_REDIS_PORT']}/0")
        check = subprocess.run([str(BIN / "maskwright"), "check"], env=check_env, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "all checks passed" in check.stdout and "interactive" in check.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    assert "stopped" in out
    # PostgreSQL's backends end a moment after pg_ctl returns; on a loaded machine, seconds
    def alive() -> list[int]:
        return [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: " ".join(psutil.Process(pid).cmdline()[:4]) for pid in alive()}
    assert not left, f"left running: {left}"
