"""The command line's way into ``inference`` (``maskwright eval`` and ``proposals``), lazily."""

from __future__ import annotations


def run_eval(argv: list[str]) -> int:
    from inference.evaluation.cli import main

    return main(argv)


def run_proposals(argv: list[str]) -> int:
    from inference.methods.mis.batch import main

    return main(argv)
