"""``maskwright eval``: evaluate an interactive method on a dataset of one's own.

Writes ``summary.json``, ``per_image.csv`` and ``iou_vs_clicks.png`` under ``--out`` and prints
a summary. ``--compare NAME`` (repeatable) runs peer methods on the same samples with the same
click protocol, side by side. Each method gets its own clicks (they follow its own errors) and,
for the multi-instance protocol, its own ``random.Random(123456 + seed)``, so its numbers do
not depend on which peers ran beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..predictor import Predictor
from .clicker import DEFAULT_EXCLUSION_RADIUS
from .datasets import CocoDataset, FolderDataset, load_dataset
from .loop import (
    DEFAULT_TAU,
    EmptyObjectError,
    MultiSampleResult,
    SampleResult,
    evaluate_multi_sample,
    evaluate_sample,
    mist_rng,
)
from .metrics import DEFAULT_MAX_CLICKS, MIST_THRESHOLD, iou
from .multi_instance import as_multi_instance
from .priors import PRIORS, degraded
from .report import format_summary, summarize, write_csv, write_json, write_plot
from .strategies import STRATEGIES


class UsageError(Exception):
    """Bad arguments or inputs: reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="maskwright eval", description="Evaluate an interactive method on a dataset.")
    add = p.add_argument
    add("--dataset", required=True, help="folder with images/ and masks/, or a COCO .json")
    add("--images", help="images folder of a COCO json (default: images/ beside it)")
    add("--method", required=True, help="registered method name, e.g. opencv-grabcut")
    add("--backbone", help="backbone name for methods that take one")
    add("--device", default="cpu")
    add("--protocol", choices=("single", "multi"), default="single")
    add("--strategy", choices=STRATEGIES, default="best", help="multi: which object to refine")
    add("--max-clicks", type=int, default=DEFAULT_MAX_CLICKS, help="single: clicks per object")
    add("--tau", type=int, default=DEFAULT_TAU, help="multi: budget of τ·N clicks per image")
    add("--beta", type=int, help="multi: wlb's per-object click cap (default τ)")
    add("--iou-threshold", type=float, default=MIST_THRESHOLD, help="multi: pass mark per object")
    add("--limit", type=int, help="evaluate only N samples")
    add("--random-subset", action="store_true", help="with --limit: a random subset (--seed)")
    add("--seed", type=int, default=0)
    add(
        "--half",
        type=int,
        choices=(0, 1),
        help="only the samples at even (0) or odd (1) positions (choose on 0, confirm on 1)",
    )
    add(
        "--band",
        choices=("ignore", "object", "background"),
        default="ignore",
        help="folder masks: what the value 128 means (ignore = RITM, object = M2N2)",
    )
    add("--min-area", type=float, default=0, help="COCO: skip annotations smaller than this")
    add(
        "--clicker",
        choices=("ritm", "m2n2"),
        default="ritm",
        help="ritm: FN and FP apart, radius-5 exclusion; m2n2: one error map, no exclusion",
    )
    add(
        "--exclusion-radius",
        type=int,
        help=f"override the excluded disk (ritm default {DEFAULT_EXCLUSION_RADIUS})",
    )
    add(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for the evaluated method's builder (JSON value), repeatable",
    )
    add(
        "--compare",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="peer method, repeatable; its builder's arguments after a colon (JSON values)",
    )
    add(
        "--prior",
        choices=PRIORS,
        help="single: each object starts from its GT degraded (part: lower 40%% of its box "
        "missing; coarse: dilated 6%% of √area); methods that refine priors start from it",
    )
    add("--out", help="output folder (default ./eval-out/<method>-<dataset>-<timestamp>)")
    add("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``maskwright eval``; returns the exit code (2 for bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _run(args)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)


def _run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.max_clicks < 1 or args.tau < 1:
        raise UsageError("--max-clicks and --tau must be at least 1")
    if args.prior and args.protocol != "single":
        raise UsageError("--prior is for the single-object protocol")
    dataset = _load(args)
    predictors = _build(_rows(args), args)
    separate = args.clicker == "ritm"
    radius = args.exclusion_radius
    if radius is None and separate:
        radius = DEFAULT_EXCLUSION_RADIUS
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    out = Path(args.out) if args.out else Path("eval-out") / f"{args.method}-{dataset.name}-{stamp}"

    started = time.perf_counter()
    results, skipped, prior_ious = _evaluate(
        dataset, predictors, args, radius=radius, separate=separate
    )
    config: dict[str, Any] = {
        "method": args.method,
        "backbone": args.backbone,
        "dataset": str(Path(args.dataset).resolve()),
        "dataset_name": dataset.name,
        "protocol": args.protocol,
        "seed": args.seed,
        "limit": args.limit,
        "random_subset": args.random_subset,
        "half": args.half,
        "device": args.device,
        "clicker": args.clicker,
        "exclusion_radius": radius,
        "prior": args.prior,
    }
    if args.protocol == "single":
        config["max_clicks"] = args.max_clicks
    else:
        beta = args.beta if args.beta is not None else args.tau
        config.update(
            strategy=args.strategy, tau=args.tau, beta=beta, iou_threshold=args.iou_threshold
        )
    summary = summarize(
        config, results, skipped=skipped, max_clicks=args.max_clicks, threshold=args.iou_threshold
    )
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    if prior_ious:
        summary["prior_miou"] = round(float(np.mean(prior_ious)), 4)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        write_json(out, summary),
        write_csv(out, results, protocol=args.protocol, threshold=args.iou_threshold),
        write_plot(out, summary, protocol=args.protocol),
    ]
    print(format_summary(summary))
    if prior_ious:
        refining = [name for name, p in predictors.items() if p.reads_prior]
        print(
            f"prior {args.prior}: mean IoU {summary['prior_miou']:.3f} before any click; "
            f"refined by {', '.join(refining) or 'none'}, the others start from nothing"
        )
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def _load(args: argparse.Namespace) -> FolderDataset | CocoDataset:
    try:
        dataset = load_dataset(
            args.dataset,
            images=args.images,
            protocol=args.protocol,
            band=args.band,
            min_area=args.min_area,
            limit=args.limit,
            subset_seed=args.seed if args.random_subset else None,
            half=args.half,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"dataset: {exc}") from exc
    if len(dataset) == 0:
        raise UsageError(f"dataset {args.dataset} has no samples")
    return dataset


def _params(items: list[str]) -> dict[str, object]:
    """``["refine_band=8", "name=x"]`` → ``{"refine_band": 8, "name": "x"}`` (JSON, else str)."""
    import json

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--param wants KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _split_top_level(spec: str) -> list[str]:
    """``'a=1,b={"x":[2,3]}'`` → ``['a=1', 'b={"x":[2,3]}']``: commas inside brackets stay."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(spec):
        depth += char in "[{" and 1 or (-1 if char in "]}" else 0)
        if char == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    if spec:
        items.append(spec[start:])
    return items


def _rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(row label, method spec) of the evaluated method, then of each peer once. A peer named
    as the evaluated method is its defaults beside it ("m2n2:defaults") when ``--backbone`` or
    ``--param`` changed the evaluated one, and the same run twice (dropped) otherwise."""
    changed = bool(args.backbone or args.param)
    rows = [(args.method, args.method)]
    for spec in args.compare:
        if spec == args.method:
            if changed and (f"{spec}:defaults", spec) not in rows:
                rows.append((f"{spec}:defaults", spec))
        elif spec not in {label for label, _ in rows}:
            rows.append((spec, spec))
    return rows


def _build(rows: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, Predictor]:
    from ..registry import build_predictor

    predictors = {}
    for label, spec in rows:
        # --backbone and --param belong to the evaluated method; a peer runs with its
        # defaults, or with the ones it names: "m2n2:scorer=null,backbone=effnet-lite2"
        method, _, own = spec.partition(":")
        if label == args.method:
            backbone, kwargs = args.backbone, _params(args.param)
        else:
            kwargs = _params(_split_top_level(own))
            backbone = kwargs.pop("backbone", None)
            if backbone is not None and not isinstance(backbone, str):
                raise UsageError(f"{spec}: backbone must be a name, got {backbone!r}")
        try:
            predictors[label] = build_predictor(
                method, backbone=backbone, device=args.device, **kwargs
            )
        except KeyError as exc:
            raise UsageError(str(exc.args[0]) if exc.args else str(exc)) from exc
        except Exception as exc:  # missing weights, bad device: the user's setup, not a crash
            raise UsageError(f"could not build method {spec!r}: {exc}") from exc
    return predictors


def _evaluate(
    dataset: FolderDataset | CocoDataset,
    predictors: dict[str, Predictor],
    args: argparse.Namespace,
    *,
    radius: int | None,
    separate: bool,
) -> tuple[dict[str, list[Any]], list[str], list[float]]:
    """Every method on each sample in turn, so each image is read once. Returns the results
    per method, the skipped samples and, with ``--prior``, each sample's prior IoU."""
    from tqdm import tqdm

    results: dict[str, list[Any]] = {name: [] for name in predictors}
    skipped: list[str] = []
    prior_ious: list[float] = []
    multi = {
        name: as_multi_instance(p) for name, p in predictors.items() if args.protocol == "multi"
    }
    rngs = {name: mist_rng(args.seed) for name in predictors}
    bar = tqdm(
        dataset,
        total=len(dataset),
        file=sys.stderr,
        desc=f"eval {dataset.name}",
        unit="sample",
        disable=args.no_progress,
    )
    for sample in bar:
        prior = degraded(sample.gt, args.prior) if args.prior else None
        try:
            for name, predictor in predictors.items():
                r: SampleResult | MultiSampleResult
                if args.protocol == "single":
                    r = evaluate_sample(
                        predictor,
                        sample,
                        max_clicks=args.max_clicks,
                        exclusion_radius=radius,
                        separate_errors=separate,
                        prior=prior,
                    )
                else:
                    r = evaluate_multi_sample(
                        multi[name],
                        sample,
                        strategy=args.strategy,
                        tau=args.tau,
                        beta=args.beta,
                        iou_threshold=args.iou_threshold,
                        rng=rngs[name],
                        exclusion_radius=radius,
                        separate_errors=separate,
                    )
                results[name].append(r)
            if prior is not None:
                prior_ious.append(iou(prior, sample.gt.astype(bool), sample.ignore))
        except EmptyObjectError:
            # raised by the first method before any prediction: no method keeps this sample
            skipped.append(sample.name)
    bar.close()
    return results, skipped, prior_ious


if __name__ == "__main__":
    raise SystemExit(main())
