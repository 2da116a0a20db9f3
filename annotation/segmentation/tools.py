"""The command line's way into ``inference`` (``maskwright eval`` and ``proposals``), lazily."""

from __future__ import annotations

import os
import sys


def run_eval(argv: list[str]) -> int:
    from inference.evaluation.cli import main

    return main(argv)


def run_proposals(argv: list[str]) -> int:
    """``maskwright proposals [--method NAME] ...``: the command of a method's proposals job
    (the first registered one when no ``--method`` is given); ``--help`` after it is its own."""
    import inference

    # no Django settings here: plugin modules come from the environment, as ``run`` reads them
    plugins = os.environ.get("MASKWRIGHT_METHOD_PLUGINS", "")
    inference.load_plugins([m.strip() for m in plugins.split(",") if m.strip()])
    offered = {
        info.name: job
        for info, job in inference.batch_jobs()
        if job.capability == "proposals" and job.cli
    }
    method = next(iter(offered), None)
    if argv[:1] == ["--method"] and len(argv) > 1:
        method, argv = argv[1], argv[2:]
    if method not in offered:
        print(
            f"no proposals command for {method!r}; methods with one: {sorted(offered)}",
            file=sys.stderr,
        )
        return 2
    command = offered[method].command()
    return int(command(argv) or 0) if command is not None else 2
