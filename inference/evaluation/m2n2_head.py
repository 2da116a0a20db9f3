"""Train M2N2's click head on the development sets and write ``head.npz`` (see
``inference/methods/m2n2/head.py``).

::

    python -m inference.evaluation.m2n2_head --data ../shared/data --out head.npz

Reproducible on one machine and build: one thread, exact PCA, seeded cell sampling, full-batch
training; about 15 minutes per half on one CPU core (most of it M2N2's maps). Data: the first
(even) halves of GrabCut, coco_mval_dev100 and the coco_sample128 instances, the same split and
clicks as the scorer's training (``m2n2_scorer``: the RITM clicker on the paper's M2N2 masks,
the positive clicks of the first ``--clicks`` rounds). ``--confirm`` also collects the second
halves and prints, per set and for first and later clicks, the mean IoU of the segment chosen
by the scorer alone and by the scorer plus the head, with the share below 0.2 (blobs).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..methods.m2n2.head import (
    CELL_INPUTS,
    PCA_DIMS,
    ClickHead,
    cell_inputs,
    click_cell,
    forward,
    grid_members,
    reduce_features,
    soft_iou,
)
from ..methods.m2n2.predictor import M2N2Predictor, build_m2n2
from ..methods.m2n2.scorer import load_scorer
from .datasets import CocoDataset, FolderDataset
from .m2n2_scorer import _valid, _work, development_sets, half_samples, positive_clicks

PROJECTION = 16
HIDDEN = 64
EPOCHS = 300
CELLS_PER_CLICK = 384  # sampled cells of each click (and the clicked cell) per training step
WEIGHT_DECAY = 1e-3


@dataclass
class ClickExample:
    """One positive click: its image's (N, C) grid features and (N, 3) colours, the inputs
    of each cell, the object's share of each cell, and the candidates' data."""

    set_name: str
    first: bool
    features: torch.Tensor
    cell: int
    inputs: torch.Tensor
    truth: torch.Tensor  # (N,) share of the cell inside the object
    valid: torch.Tensor  # (N,) share of the cell not ignored
    members: torch.Tensor  # (K, N) candidates on the grid
    scorer_features: torch.Tensor  # (K, F)
    ious: np.ndarray  # (K,) candidate IoU with the object at the working resolution


def _pool(mask: np.ndarray | torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    tensor = torch.as_tensor(np.array(mask, dtype=np.float32))[None, None]
    return torch.nn.functional.adaptive_avg_pool2d(tensor, grid_hw).reshape(-1)


def collect(
    predictor: M2N2Predictor,
    dataset: FolderDataset | CocoDataset,
    set_name: str,
    which: int,
    rounds: int,
    log=print,
) -> list[ClickExample]:
    """The positive clicks of the first ``rounds`` clicker rounds on one half of a set (the
    scorer's simulated sessions, :func:`~.m2n2_scorer.positive_clicks`)."""
    out: list[ClickExample] = []
    for sample in half_samples(predictor, dataset, set_name, which, log):
        features, colour = predictor.grid_features()
        grid = predictor._grid_hw
        for click in positive_clicks(predictor, sample, rounds):
            hw = (int(click.dist.shape[0]), int(click.dist.shape[1]))
            cell = click_cell(*click.key, hw, grid)
            out.append(
                ClickExample(
                    set_name=set_name,
                    first=click.round == 0,
                    features=features,
                    cell=cell,
                    inputs=cell_inputs(predictor.walk_map(click.key), colour, grid, cell),
                    truth=_pool(_work(sample.gt.astype(bool), hw), grid),
                    valid=_pool(_valid(sample.ignore, hw), grid),
                    members=grid_members(click.dist, click.found.thresholds, grid).half(),
                    scorer_features=click.found.features,
                    ious=click.ious,
                )
            )
    return out


def pca_basis(examples: Sequence[ClickExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """(C,) mean and (C, PCA_DIMS) top principal directions of the examples' images' cells
    (exact: an eigendecomposition of the covariance, largest first)."""
    seen: dict[int, torch.Tensor] = {}
    for e in examples:
        seen.setdefault(id(e.features), e.features)
    cells = torch.cat([f.double() for f in seen.values()])
    mean = cells.mean(0)
    centred = cells - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred / len(cells))
    return mean.float(), vectors[:, -PCA_DIMS:].flip(1).float().contiguous()


def train(
    examples: Sequence[ClickExample], *, epochs: int = EPOCHS, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fit the head on the examples' cells; returns the ``head.npz`` arrays."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean, basis = pca_basis(examples)
    fixed = {"mean": mean, "basis": basis}
    rows, cells, inputs, truth, weight = [], [], [], [], []
    offset = 0
    for e in examples:
        pick = torch.randperm(len(e.inputs), generator=generator)[:CELLS_PER_CLICK]
        pick = torch.unique(torch.cat([pick, torch.tensor([e.cell])]))
        rows.append(reduce_features(fixed, e.features[pick]))
        cells.append(torch.full((len(pick),), offset + int((pick == e.cell).nonzero()[0, 0])))
        inputs.append(e.inputs[pick])
        truth.append(e.truth[pick])
        weight.append(e.valid[pick] / len(pick))
        offset += len(pick)
    reduced, cell = torch.cat(rows), torch.cat(cells)
    x, y, w = torch.cat(inputs), torch.cat(truth), torch.cat(weight)
    width = 3 * PROJECTION + 1 + len(CELL_INPUTS)
    layers = [torch.nn.Linear(PCA_DIMS, PROJECTION), torch.nn.Linear(width, HIDDEN)]
    layers.append(torch.nn.Linear(HIDDEN, 1))
    optimiser = torch.optim.AdamW(
        [p for layer in layers for p in layer.parameters()], lr=3e-3, weight_decay=WEIGHT_DECAY
    )

    def params() -> dict[str, torch.Tensor]:
        names = (("proj_w", "proj_b"), ("w1", "b1"), ("w2", "b2"))
        out = dict(fixed)
        for (wn, bn), layer in zip(names, layers, strict=True):
            out[wn], out[bn] = layer.weight.T, layer.bias
        return out

    for _ in range(epochs):
        logits = forward(params(), reduced, cell, x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        loss = (loss * w).sum() / w.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    weights = {k: v.detach().contiguous().numpy() for k, v in params().items()}
    weights["inputs"] = np.array(CELL_INPUTS)
    return weights


def choices(head: ClickHead | None, examples: Sequence[ClickExample]) -> np.ndarray:
    """IoU of the candidate chosen for each example: the packaged scorer's score, plus the
    head's soft IoU when ``head`` is given (as ``M2N2Predictor`` ranks them)."""
    scorer = load_scorer()
    chosen = []
    with torch.no_grad():
        for e in examples:
            score = scorer(e.scorer_features)
            if head is not None:
                probs = head.probabilities(e.features, e.inputs, e.cell)
                score = (score + soft_iou(probs, e.members.float())) / 2
            chosen.append(e.ious[int(torch.argmax(score))])
    return np.array(chosen)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.evaluation.m2n2_head")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clicks", type=int, default=3, help="clicker rounds per object")
    parser.add_argument("--min-area", type=float, default=1000)
    parser.add_argument("--confirm", action="store_true", help="also report the second halves")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same sums in the same order on every run
    sets = development_sets(args.data, args.min_area)
    if not sets:
        print(f"no development set under {args.data}", file=sys.stderr)
        return 2
    predictor = build_m2n2(scorer=None)  # the paper's choice drives the simulated clicks
    halves = (0, 1) if args.confirm else (0,)
    examples: dict[int, list[ClickExample]] = {}
    for which in halves:
        print(f"collecting half {which}", flush=True)
        examples[which] = [
            e for name, ds in sets.items() for e in collect(predictor, ds, name, which, args.clicks)
        ]
    started = time.perf_counter()
    weights = train(examples[0])
    print(f"trained on {len(examples[0])} clicks in {time.perf_counter() - started:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **weights)  # type: ignore[arg-type]  # numpy stubs type **kwds badly
    head = ClickHead(weights)
    print(f"{'set':18s} half     clicks       n  scorer IoU / blobs  scorer+head IoU / blobs")
    for which, found in examples.items():
        for name in sets:
            for first in (True, False):
                chosen = [e for e in found if e.set_name == name and e.first == first]
                if not chosen:
                    continue
                alone, both = choices(None, chosen), choices(head, chosen)
                print(
                    f"{name:18s} {'train' if which == 0 else 'confirm':8s} "
                    f"{'first' if first else 'later':6s} {len(chosen):5d}  "
                    f"{alone.mean():10.3f} / {(alone < 0.2).mean():4.2f}  "
                    f"{both.mean():15.3f} / {(both < 0.2).mean():4.2f}"
                )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
