"""The command line's way into ``inference`` (evaluation and speed benchmarks), lazily."""
from __future__ import annotations

import importlib
import json
from typing import Any

# Benchmark topics implemented by the inference library (no database needed).
INFERENCE_BENCHES = {
    "m2n2": "inference.benchmarks.m2n2",
    "mis": "inference.benchmarks.mis",
    "salt": "inference.benchmarks.salt",
    "dynamite": "inference.benchmarks.dynamite",
    "dynamite-train": "inference.benchmarks.dynamite_train",
    "exits": "inference.benchmarks.exits",
}


def run_eval(argv: list[str]) -> int:
    from inference.evaluation.cli import main

    return main(argv)


def run_proposals(argv: list[str]) -> int:
    from inference.methods.mis.batch import main

    return main(argv)


def run_inference_bench(topic: str, *, quick: bool, device: str | None) -> dict[str, Any]:
    figures = importlib.import_module(INFERENCE_BENCHES[topic]).run(quick=quick, device=device)
    print(json.dumps(figures), flush=True)
    return figures
