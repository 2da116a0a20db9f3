"""The ``maskwright`` command: run the platform, check it, test it, benchmark it."""

from __future__ import annotations

import argparse
import os
import sys


def _django(settings: str = "config.settings.local") -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import django

    django.setup()


def _bench_topics() -> list[str]:
    """The benchmarks of a checkout (``benchmarks/`` beside the packages; not installed)."""
    try:
        from benchmarks import TOPICS
    except ImportError:
        return []
    return list(TOPICS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="maskwright", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help=(
            "start the whole platform "
            "(embedded Postgres + Redis unless DATABASE_URL/REDIS_URL are set)"
        ),
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=int(os.environ.get("MASKWRIGHT_PORT", "8000")))
    run.add_argument("--no-demo", action="store_true", help="do not create the demo project")

    sub.add_parser("check", help="health of database, Redis, workers and storage")

    sub.add_parser(
        "test",
        help="run the test suite (starts embedded servers unless DATABASE_URL/REDIS_URL are set)",
    )

    sub.add_parser("demo", help="create the demo project, dataset and login (idempotent)")

    bench = sub.add_parser("bench", help="print performance figures; the last line is JSON")
    bench.add_argument("topic", choices=_bench_topics())
    bench.add_argument(
        "--device", default=None, help="inference benches: cpu or cuda (default: cuda if present)"
    )
    bench.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    bench.add_argument(
        "--check",
        action="store_true",
        help="then check the figures against the issues' goals (stderr); exit 1 if one is missed",
    )

    # `eval` and `test` hand their arguments on untouched (handled before parsing below).
    sub.add_parser(
        "eval", help="evaluate an interactive method on a dataset (maskwright eval --help)"
    )
    sub.add_parser(
        "proposals",
        help="region proposals for a folder or COCO json, resumable ([--method NAME] --help)",
    )

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:
        from annotation.segmentation.tools import run_eval

        return run_eval(argv[1:])
    if argv[:1] == ["proposals"]:
        from annotation.segmentation.tools import run_proposals

        return run_proposals(argv[1:])
    if argv[:1] == ["test"]:
        # Everything after `test` belongs to pytest, options included.
        from .testcmd import run_tests

        return run_tests(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "run":
        from .run import run_platform

        return run_platform(host=args.host, port=args.port, demo=not args.no_demo)
    if args.command == "check":
        _django()
        from .check import run_checks

        return run_checks()
    if args.command == "demo":
        _django()
        from .demo import demo_create

        print(demo_create())
        return 0
    if args.command == "bench":
        from benchmarks import run_bench

        return run_bench(args.topic, quick=args.quick, device=args.device, check=args.check)
    return 2


if __name__ == "__main__":
    sys.exit(main())
