"""Train M2N2's candidate scorer on the development sets and write ``scorer.npz`` (this module
sits above the methods: it reads the sets through the evaluation's datasets and clicker).

::

    python -m inference.evaluation.m2n2_scorer --data ../shared/data --out scorer.npz

Reproducible: one thread, fixed seeds, full-batch training; about 15 minutes on 2 CPU cores
(most of it M2N2's maps). Data: GrabCut, coco_mval_dev100 and the coco_sample128 instances
(area >= ``--min-area`` px, single-object protocol), each split by position into two halves:
even positions train, odd positions confirm (``maskwright eval --half 1``). Per object, the
clicks of the first ``--clicks`` rounds of the RITM clicker (on the paper's M2N2 masks) give
one example per positive click: its candidates (``scorer.Candidates``) and, per candidate,
the IoU of its segment with the object at the working resolution (ignored pixels left out).

The loss is the squared error of the predicted IoU plus a listwise term (cross-entropy between
the softmax of the predictions and of the true IoUs over one click's candidates), because the
predictor takes the argmax: ranking matters more than calibration.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..methods.m2n2.predictor import M2N2Predictor, build_m2n2
from ..methods.m2n2.scorer import (
    FEATURES,
    Candidates,
    candidate_features,
    image_gradient,
    with_relative,
)
from .clicker import ClickSimulator
from .datasets import CocoDataset, FolderDataset, Sample

# One small hidden layer and weight decay: 32 + 32 units fit the first half (IoU 0.56 on
# coco_mval_dev100) and lost on the second (0.40); 8 units: 0.45 / 0.42.
HIDDEN = (8,)
WEIGHT_DECAY = 0.01
LISTWISE_TEMPERATURE = 0.05


def development_sets(root: Path, min_area: float = 1000) -> dict[str, FolderDataset | CocoDataset]:
    """The three development sets under ``root`` (``../shared/data``), those present."""
    sets: dict[str, FolderDataset | CocoDataset] = {}
    for name in ("grabcut", "coco_mval_dev100"):
        if (root / name / "images").is_dir():
            sets[name] = FolderDataset(root / name)
    coco = root / "coco_sample128" / "annotations"
    jsons = sorted(coco.glob("*.json")) if coco.is_dir() else []
    if jsons:
        sets["coco_sample128"] = CocoDataset(jsons[0], min_area=min_area)
    return sets


def half(samples: Sequence[Sample] | FolderDataset | CocoDataset, which: int) -> list[int]:
    """Positions of one half: 0 = even (choose / train), 1 = odd (confirm)."""
    return [i for i in range(len(samples)) if i % 2 == which]


def _work(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((hw[1], hw[0]), Image.Resampling.NEAREST))


def _valid(ignore: np.ndarray | None, hw: tuple[int, int]) -> torch.Tensor:
    """(h, w) bool: the pixels at the working size that count (not ignored)."""
    if ignore is None:
        return torch.ones(hw, dtype=torch.bool)
    return ~torch.from_numpy(np.array(_work(ignore.astype(bool), hw)))


def prefix_ious(
    dist: torch.Tensor, sizes: torch.Tensor, gt: np.ndarray, ignore: np.ndarray | None
) -> np.ndarray:
    """(K,) float32 IoU with the object of each prefix of ``dist``'s pixel order of the given
    sizes, at the working resolution (ignored pixels left out), by cumulative sums."""
    hw = (int(dist.shape[0]), int(dist.shape[1]))
    obj = torch.from_numpy(np.array(_work(gt, hw))).reshape(-1)
    valid = _valid(ignore, hw).reshape(-1)
    order = torch.sort(dist.reshape(-1), stable=True).indices
    inter = torch.cumsum((obj & valid)[order].double(), 0)[sizes - 1]
    inside = torch.cumsum(valid[order].double(), 0)[sizes - 1]
    total = (obj & valid).sum().double()
    return (inter / (inside + total - inter).clamp_min(1)).float().numpy()


@dataclass(frozen=True)
class PositiveClick:
    """A positive click of a simulated session: its round (0: the first click), its pixel at
    the working resolution, its (h, w) distance map, its candidates, and each candidate's IoU
    with the object (:func:`prefix_ious`)."""

    round: int
    key: tuple[int, int]
    dist: torch.Tensor
    found: Candidates
    ious: np.ndarray


def positive_clicks(
    predictor: M2N2Predictor, sample: Sample, rounds: int
) -> Iterable[PositiveClick]:
    """The positive clicks of the first ``rounds`` clicks of the RITM clicker on ``sample``,
    each correcting the predictor's mask so far; ``predictor.set_image`` already done."""
    gt = sample.gt.astype(bool)
    clicker = ClickSimulator(gt, sample.ignore)
    pred = np.zeros(gt.shape, dtype=bool)
    guide = predictor._guide
    assert guide is not None  # set_image ran
    grad = image_gradient(guide)
    for round_ in range(rounds):
        placed = clicker.next_click(1, pred)
        if placed is None:
            return
        if placed.positive:
            dist, key = predictor.distance_map(placed)
            found = candidate_features(dist, guide, grad)
            ious = prefix_ious(dist, found.sizes, gt, sample.ignore)
            yield PositiveClick(round_, key, dist, found, ious)
        pred = predictor.predict(list(clicker.clicks)).mask


def half_samples(
    predictor: M2N2Predictor,
    dataset: Sequence[Sample] | FolderDataset | CocoDataset,
    name: str,
    which: int,
    log=print,
) -> Iterable[Sample]:
    """The samples of one half, with ``predictor.set_image`` done on each (once per image:
    COCO instances of one image share it), logging progress every 25 objects."""
    previous, started = None, time.perf_counter()
    positions = half(dataset, which)
    for done, position in enumerate(positions, 1):
        sample = dataset[position]
        image_key = sample.name.split("#")[0]
        if image_key != previous:
            predictor.set_image(sample.image)
            previous = image_key
        yield sample
        if done % 25 == 0 or done == len(positions):
            seconds = time.perf_counter() - started
            log(f"  {name}: {done}/{len(positions)} objects, {seconds:.0f} s", flush=True)


def collect(
    sets: dict[str, FolderDataset | CocoDataset], which: int, rounds: int, log=print
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per set, stacked examples of one half: features (E, K, F) and IoUs (E, K)."""
    predictor = build_m2n2(scorer=None)  # the paper's choice drives the simulated clicks
    out = {}
    for name, dataset in sets.items():
        feats, ious = [], []
        for sample in half_samples(predictor, dataset, name, which, log):
            for click in positive_clicks(predictor, sample, rounds):
                feats.append(click.found.features.numpy())
                ious.append(click.ious)
        out[name] = (np.stack(feats), np.stack(ious))
    return out


def train(
    features: np.ndarray,
    ious: np.ndarray,
    *,
    hidden: Sequence[int] = HIDDEN,
    weight_decay: float = WEIGHT_DECAY,
    epochs: int = 600,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Fit the MLP on (E, K, F) features and (E, K) IoUs; returns the ``scorer.npz`` arrays."""
    torch.manual_seed(seed)
    x = with_relative(torch.from_numpy(features).float())
    y = torch.from_numpy(ious).float()
    flat = x.reshape(-1, x.shape[-1])
    mean, std = flat.mean(0), flat.std(0).clamp_min(1e-6)
    dims = [x.shape[-1], *hidden, 1]
    layers = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(dims)]
    params = [p for layer in layers for p in layer.parameters()]
    optimiser = torch.optim.AdamW(params, lr=3e-3, weight_decay=weight_decay)
    target = torch.softmax(y / LISTWISE_TEMPERATURE, dim=1)
    for _ in range(epochs):
        h = (x - mean) / std
        for layer in layers[:-1]:
            h = torch.relu(layer(h))
        pred = torch.sigmoid(layers[-1](h).squeeze(-1))
        listwise = -(target * torch.log_softmax(pred / LISTWISE_TEMPERATURE, dim=1)).sum(1)
        loss = (pred - y).square().mean() + 0.1 * listwise.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    weights = {"features": np.array(FEATURES), "mean": mean.numpy(), "std": std.numpy()}
    for i, layer in enumerate(layers):
        weights[f"w{i}"] = layer.weight.detach().T.contiguous().numpy()
        weights[f"b{i}"] = layer.bias.detach().numpy()
    return weights


def choice_quality(scores: np.ndarray, ious: np.ndarray) -> tuple[float, float, float]:
    """(mean IoU of the argmax, share of argmax IoU < 0.2, mean oracle IoU) over examples."""
    chosen = ious[np.arange(len(ious)), scores.argmax(1)]
    return float(chosen.mean()), float((chosen < 0.2).mean()), float(ious.max(1).mean())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.evaluation.m2n2_scorer")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clicks", type=int, default=3, help="clicker rounds per object")
    parser.add_argument("--min-area", type=float, default=1000)
    parser.add_argument("--cache", type=Path, help="npz of collected examples (reused if present)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same sums in the same order on every machine
    sets = development_sets(args.data, args.min_area)
    if not sets:
        print(f"no development set under {args.data}", file=sys.stderr)
        return 2
    if args.cache and args.cache.is_file():
        with np.load(args.cache) as data:
            examples = {
                (k.split("|")[0], int(k.split("|")[1])): (data[k + "|x"], data[k + "|y"])
                for k in {f.rsplit("|", 1)[0] for f in data.files}
            }
    else:
        examples = {}
        for which in (0, 1):
            print(f"collecting half {which}")
            for name, xy in collect(sets, which, args.clicks).items():
                examples[(name, which)] = xy
        if args.cache:
            flat = {}
            for (name, which), (x, y) in examples.items():
                flat[f"{name}|{which}|x"], flat[f"{name}|{which}|y"] = x, y
            np.savez_compressed(args.cache, **flat)
    train_x = np.concatenate([x for (_, w), (x, _) in examples.items() if w == 0])
    train_y = np.concatenate([y for (_, w), (_, y) in examples.items() if w == 0])
    weights = train(train_x, train_y)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **weights)  # type: ignore[arg-type]  # numpy stubs type **kwds badly
    from ..methods.m2n2.scorer import Scorer

    scorer = Scorer(weights)
    print(f"{'set':18s} half  clicks  learned IoU  blobs  oracle IoU")
    for (name, which), (x, y) in sorted(examples.items()):
        with torch.no_grad():
            scores = scorer(torch.from_numpy(x))
        mean, blobs, oracle = choice_quality(scores.numpy(), y)
        label = "train" if which == 0 else "confirm"
        print(f"{name:18s} {label:7s} {len(y):5d}  {mean:11.3f}  {blobs:5.2f}  {oracle:10.3f}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
