"""``maskwright bench <topic>``: speed and quality figures, human-readable lines, then one JSON
line of the figures (last).

Benchmarks live here, outside the installed packages: the library's (one module per method,
no database) and the platform's (real PostgreSQL, Redis, Celery and websockets, started by
:mod:`.harness`). They read real data from :func:`shared_dir`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

SHARED_ENV = "MASKWRIGHT_SHARED"
REPO = Path(__file__).resolve().parents[1]

# topic → (module, what it needs): "library" runs in this process; "stack" inside
# :func:`.harness.bench_environment`; "own" starts what it needs itself.
TOPICS: dict[str, tuple[str, str]] = {
    "ingest": ("benchmarks.ingest:bench_ingest", "stack"),
    "api": ("benchmarks.api:bench_api", "stack"),
    "ws": ("benchmarks.ws:bench_ws", "stack"),
    "export": ("benchmarks.export:bench_export", "stack"),
    "dashboard": ("benchmarks.dashboard:bench_dashboard", "stack"),
    "storage": ("benchmarks.storage:bench_storage", "stack"),
    "faults": ("benchmarks.faults:bench_faults", "own"),
    "m2n2": ("benchmarks.m2n2:run", "library"),
    "mis": ("benchmarks.mis:run", "library"),
    "salt": ("benchmarks.salt:run", "library"),
    "dynamite": ("benchmarks.dynamite:run", "library"),
    "dynamite-train": ("benchmarks.dynamite_train:run", "library"),
    "exits": ("benchmarks.exits:run", "library"),
    "sam": ("benchmarks.sam:run", "library"),
}


def shared_dir() -> Path:
    """The shared data folder: ``$MASKWRIGHT_SHARED``, else ``shared/`` beside the repository
    (``<repo>/../shared``), where ``data/grabcut`` and ``data/coco_sample128`` live."""
    configured = os.environ.get(SHARED_ENV)
    if configured:
        return Path(configured)
    return REPO.parent / "shared"


def run_bench(
    topic: str, *, quick: bool = False, device: str | None = None, check: bool = False
) -> int:
    """Run one topic and print its figures as the last line; the exit status. With ``check``,
    each goal of :mod:`.goals` then prints PASS / FAIL / MISSING to stderr (so the JSON stays
    the last line of stdout), and the status is 1 if any goal is missed."""
    target, needs = TOPICS[topic]
    module, function = target.split(":")
    bench = getattr(importlib.import_module(module), function)
    if needs == "library":
        figures = bench(quick=quick, device=device)
    elif needs == "own":
        figures = bench(quick=quick)
    else:
        from .harness import bench_environment

        with bench_environment() as env:
            figures = bench(env, quick=quick)
    print(json.dumps(figures), flush=True)
    if not check:
        return 0
    from .goals import check as check_goals
    from .goals import measured_device, missed

    on = measured_device(topic, device)
    lines = check_goals(topic, figures, quick=quick, device=on)
    for line in lines:
        print(line, file=sys.stderr)
    if not lines:
        print(f"check: no goal applies to {topic} (quick={quick}, device={on})", file=sys.stderr)
    sys.stderr.flush()
    return 1 if missed(lines) else 0
