"""The linters the project is configured for run with the tests (and so in CI): ``ruff check``
on the whole tree and ``mypy`` on the inference library (pyproject.toml configures both)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_check_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a dev dependency: pip install -e '.[dev]'"
    out = _run([ruff, "check", "--no-cache", "."])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_mypy_on_the_inference_library_is_clean():
    out = _run([sys.executable, "-m", "mypy", "inference"])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
