"""``maskwright bench <topic>``: human-readable lines, then one JSON line of the figures."""
from __future__ import annotations

import json
import sys


def run_bench(topic: str, *, quick: bool = False, device: str | None = None) -> int:
    from annotation.segmentation.cli import INFERENCE_BENCHES, run_inference_bench

    if topic in INFERENCE_BENCHES:  # library benchmarks need no database
        run_inference_bench(topic, quick=quick, device=device)
        return 0
    if topic == "faults":  # runs the quick start itself, on embedded servers of its own
        from .faults import bench_faults

        print(json.dumps(bench_faults(quick=quick)), flush=True)
        return 0
    from .harness import bench_environment

    with bench_environment() as env:
        if topic == "ingest":
            from .ingest import bench_ingest

            figures = bench_ingest(env, quick=quick)
        elif topic == "ws":
            from .ws import bench_ws

            figures = bench_ws(env, quick=quick)
        elif topic == "export":
            from .export import bench_export

            figures = bench_export(env, quick=quick)
        elif topic == "api":
            from .api import bench_api

            figures = bench_api(env, quick=quick)
        elif topic == "dashboard":
            from .dashboard import bench_dashboard

            figures = bench_dashboard(env, quick=quick)
        else:
            print(f"unknown topic {topic}", file=sys.stderr)
            return 2
    print(json.dumps(figures), flush=True)
    return 0
