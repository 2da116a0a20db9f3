"""Python code in a fresh interpreter with the repository's import roots, for tests that must
see what a clean process imports or registers (a torch-free web process, job kinds at start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` with ``python -c`` in the repository (``env`` adds variables; the test
    settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise); its output."""
    roots = [str(REPO), str(REPO / "platform"), os.environ.get("PYTHONPATH", "")]
    environ = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join(roots),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
