"""Orphans we start must not outlive their exit status as ``<defunct>`` entries.

``pg_ctl start`` forks the postmaster and exits, so the postmaster's parent becomes PID 1, or the
nearest ancestor marked a "child subreaper". In containers PID 1 is often a process that never
calls ``wait`` (here, an agent's API server), so a stopped PostgreSQL stayed in the process table
as ``<defunct>`` after ``maskwright run`` ended. Marking ourselves a subreaper makes the
postmaster our child, and :func:`reap` collects its exit status once it has stopped.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

import psutil

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def adopt_orphans() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux ≥ 3.4); True if so."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is an exited child of ours; otherwise nothing.

    Only that pid: a ``waitpid(-1)`` would also take the status of children that a
    ``subprocess.Popen`` still has to wait for.
    """
    if pid <= 0:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not ours (no subreaper here), or already collected


def reap_orphans() -> None:
    """Collect every exited child: call only once all our own Popen children were waited for
    (the orphans adopted by :func:`adopt_orphans` are the only ones left)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def terminate(proc: psutil.Process) -> None:
    """SIGTERM (Redis then writes its snapshot), wait, and SIGKILL only if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def stop_processes(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM every process still running, then wait for each; SIGKILL any that hangs.

    Signalling all before waiting lets them shut down in parallel.
    """
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
