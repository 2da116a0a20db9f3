"""Real SAM checkpoints: run only with MASKWRIGHT_WEIGHTS_DIR set (or a warm Hugging Face cache),
each variant skipped when its own checkpoint is absent. Each runs ``maskwright eval`` (the same
CLI, the single-object protocol, 20 clicks) on GrabCut and coco_mval_dev100 when the shared data
is there, and prints NoC@85/90 (``pytest -s`` shows them); the figures are asserted only to be
figures, not to meet a goal (random weights never reach this test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inference.evaluation.cli import main as eval_main
from inference.methods.sam.variants import FAMILIES
from inference.weights import WeightsNotFound, resolve_weights

pytestmark = pytest.mark.weights

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DATA = Path(__file__).resolve().parents[4].parent / "shared" / "data"
SETS = ("grabcut", "coco_mval_dev100")
VARIANTS = [(method, variant) for method, f in FAMILIES.items() for variant in f.variants]


@pytest.mark.parametrize(("method", "variant"), VARIANTS)
@pytest.mark.parametrize("dataset", SETS)
def test_noc_of_a_real_checkpoint(method, variant, dataset, tmp_path, capsys):
    try:
        resolve_weights(FAMILIES[method].variants[variant])
    except WeightsNotFound as exc:
        pytest.skip(str(exc))
    if not (DATA / dataset).is_dir():
        pytest.skip(f"{DATA / dataset} is absent")
    argv = [
        "--dataset", str(DATA / dataset), "--method", method, "--backbone", variant,
        "--device", DEVICE, "--max-clicks", "20", "--out", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert eval_main(argv) == 0
    (summary,) = tmp_path.rglob("summary.json")
    metrics = json.loads(summary.read_text())["metrics"]
    print(f"{method}/{variant} on {dataset}: {capsys.readouterr().out.strip()}")
    assert 1 <= metrics["NoC@85"] <= metrics["NoC@90"] <= 20
