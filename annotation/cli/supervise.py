"""Keeping the quick start's Celery workers and web server up: one that dies is started again.

A worker is expendable: its interactive cache is rebuilt from the image and the prompt log, a
job it ran resumes from its cursor (job leases), a click it held is sent again by the socket
after ``INTERACTIVE_RETRY_S``. So ``maskwright run`` restarts it instead of stopping the
platform; before, a worker's death stopped every process and uvicorn's shutdown closed every
browser socket with 1012 (service restart). The web server is restarted too (its sockets
reconnect; the page retries). Only a database's death ends the run: nothing can be served
without it.

Restarts back off (1 s, 2 s, 4 s … up to 30 s) so a worker that cannot start (a bad model, a
broken install) does not spin; a worker that stayed up for a minute starts from 1 s again.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0


class Supervised:
    """One child process, started again (with back-off) whenever it exits.

    :meth:`poll` is called from the launcher's loop; it never blocks. ``say`` receives one
    line per event (exit, restart) for the console.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        say: Callable[[str], None] = print,
        *,
        min_backoff: float = MIN_BACKOFF_S,
        max_backoff: float = MAX_BACKOFF_S,
        stable_s: float = STABLE_S,
    ) -> None:
        self.name, self.argv, self.env, self.log_path, self.say = name, argv, env, log_path, say
        self.min_backoff, self.max_backoff, self.stable_s = min_backoff, max_backoff, stable_s
        self.backoff = min_backoff
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.restarts = 0
        self._log: IO[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        return self.proc

    def poll(self, now: float | None = None) -> None:
        """Notice an exit and schedule the restart; start it when its back-off has passed."""
        now = time.monotonic() if now is None else now
        proc = self.proc
        if proc is not None and proc.poll() is None:
            if now - self.started_at >= self.stable_s:
                self.backoff = self.min_backoff  # it stayed up: the next failure is a new one
            return
        if self.restart_at is None:
            code = proc.returncode if proc is not None else None
            self.restart_at = now + self.backoff
            self.say(
                f"{self.name} exited with code {code}; restarting in {self.backoff:g} s "
                f"(log: {self.log_path})"
            )
            self.backoff = min(self.backoff * 2, self.max_backoff)
            return
        if now >= self.restart_at:
            self.restarts += 1
            self.start()
            self.say(f"{self.name} restarted (pid {self.proc.pid}, restart {self.restarts})")

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
