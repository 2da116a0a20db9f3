"""`maskwright run` as a person starts it, for the quick-start tests: its own data folder and
free ports, started in a subprocess and read until it says it is running."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from annotation.cli.services import free_port

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@dataclass
class Launched:
    proc: subprocess.Popen
    env: dict[str, str]
    base: str  # http://127.0.0.1:<port>
    lines: list[str] = field(default_factory=list)  # what it printed until it was running

    @property
    def check_env(self) -> dict[str, str]:
        """The environment for `maskwright check` (and any client) against its servers."""
        return dict(
            self.env,
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{self.env['MASKWRIGHT_PG_PORT']}/maskwright",
            REDIS_URL=f"redis://127.0.0.1:{self.env['MASKWRIGHT_REDIS_PORT']}/0",
        )

    def stop(self, timeout: float = 60) -> str:
        """Ctrl-C, as a person stops it; what it printed since it was running."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return out

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "maskwright"), "check"],
            env=self.check_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def launch(tmp_path: Path, *args: str, timeout: float = 240, **env_extra: str) -> Launched:
    """Start `maskwright run` (embedded servers under ``tmp_path``) and return once it prints
    that it is running; the caller stops it (SIGINT) in a ``finally``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    port = free_port()
    env.update(
        MASKWRIGHT_HOME=str(tmp_path / "home"),
        MASKWRIGHT_PG_PORT=str(free_port()),
        MASKWRIGHT_REDIS_PORT=str(free_port()),
        **env_extra,
    )
    proc = subprocess.Popen(
        [str(BIN / "maskwright"), "run", "--port", str(port), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = Launched(proc, env, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        run.lines.append(line)
        if "Maskwright is running" in line:
            return run
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    raise AssertionError("quick start did not come up: " + "".join(run.lines))


def login(base: str) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    """Sign in as demo / demo through the login page; an opener that keeps the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": "demo", "password": "demo", "csrfmiddlewaretoken": token, "next": "/"}
    )
    opener.open(
        urllib.request.Request(
            f"{base}/login/", data=data.encode(), headers={"Referer": f"{base}/login/"}
        )
    )
    return opener, jar
