"""Turning loop results into the summary JSON, the per-image CSV, the plot and printed lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .loop import MultiSampleResult
from .metrics import (
    DEFAULT_THRESHOLDS,
    mist_summary,
    noc,
    single_summary,
    threshold_key,
    timing_summary,
)

SUMMARY_FILE = "summary.json"
CSV_FILE = "per_image.csv"
PLOT_FILE = "iou_vs_clicks.png"


def summarize(
    config: Mapping[str, Any],
    results: Mapping[str, Sequence[Any]],
    *,
    skipped: Sequence[str] = (),
    max_clicks: int,
    threshold: float,
) -> dict[str, Any]:
    """``config`` plus ``metrics`` of the first method and ``compare`` of the others."""
    per_method = {
        name: method_metrics(rs, config["protocol"], max_clicks, threshold, tau=config.get("tau"))
        for name, rs in results.items()
    }
    first, *rest = per_method
    return {
        **config,
        "num_samples": per_method[first]["num_samples"],
        "skipped": list(skipped),
        "metrics": per_method[first],
        "compare": {name: per_method[name] for name in rest},
    }


def method_metrics(
    results: Sequence[Any],
    protocol: str,
    max_clicks: int,
    threshold: float,
    *,
    tau: int | None = None,
) -> dict[str, Any]:
    """Single: :func:`single_summary` at 85/90. Multi: :func:`mist_summary` and an IoU curve."""
    seconds = [s for r in results for s in r.seconds]
    if protocol == "single":
        curves = [r.ious for r in results]
        m = single_summary(curves, seconds, thresholds=DEFAULT_THRESHOLDS, max_clicks=max_clicks)
        m["mIoU@k"] = {str(k): round(v, 6) for k, v in enumerate(m["mIoU@k"], start=1)}
        return m
    finals = [r.final_ious for r in results]
    m = mist_summary(finals, [r.num_interactions for r in results], threshold=threshold)
    m["num_samples"] = m.pop("num_images")
    curve = clicks_per_object_curve(results, depth=tau)
    m["mIoU@clicks_per_object"] = {str(k): round(v, 6) for k, v in enumerate(curve, start=1)}
    m["seconds_per_click"] = timing_summary(seconds)
    return m


def clicks_per_object_curve(
    results: Sequence[MultiSampleResult], depth: int | None = None
) -> list[float]:
    """Mean over images of the mean object IoU after k·N clicks, k = 1..depth (default: the
    deepest image); an image that stopped keeps its last IoUs."""
    if not results:
        return []
    if depth is None:
        depth = max(-(-r.num_interactions // len(r.object_ids)) for r in results)
    curve = []
    for k in range(1, depth + 1):
        # ious[j] is the state after N + j clicks
        states = [r.ious[min((k - 1) * len(r.object_ids), len(r.ious) - 1)] for r in results]
        curve.append(float(np.mean([np.mean(s) for s in states])))
    return curve


def write_json(out: Path, summary: Mapping[str, Any]) -> Path:
    path = out / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def write_csv(
    out: Path, results: Mapping[str, Sequence[Any]], *, protocol: str, threshold: float = 0.85
) -> Path:
    """One row per method and sample (``threshold``: multi's pass mark for failed objects)."""
    path = out / CSV_FILE
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        if protocol == "single":
            n = max((len(r.ious) for rs in results.values() for r in rs), default=0)
            nocs = [f"NoC@{threshold_key(t)}" for t in DEFAULT_THRESHOLDS]
            ious = [f"iou@{k}" for k in range(1, n + 1)]
            writer.writerow(["method", "name", *nocs, *ious, "set_image_s", "mean_click_s"])
            for name, rs in results.items():
                for r in rs:
                    writer.writerow(
                        [
                            name,
                            r.name,
                            *[noc(r.ious, t, len(r.ious)) for t in DEFAULT_THRESHOLDS],
                            *[f"{v:.6f}" for v in r.ious],
                            f"{r.set_image_seconds:.6f}",
                            _mean(r.seconds),
                        ]
                    )
            return path
        writer.writerow(
            [
                "method",
                "name",
                "objects",
                "interactions",
                "clicks_per_object",
                "failed_objects",
                "mean_final_iou",
                "set_image_s",
                "mean_click_s",
            ]
        )
        for name, rs in results.items():
            for r in rs:
                finals = r.final_ious
                writer.writerow(
                    [
                        name,
                        r.name,
                        len(finals),
                        r.num_interactions,
                        f"{r.num_interactions / len(finals):.4f}",
                        sum(v < threshold for v in finals),
                        f"{np.mean(finals):.6f}",
                        f"{r.set_image_seconds:.6f}",
                        _mean(r.seconds),
                    ]
                )
    return path


def _mean(values: Sequence[float]) -> str:
    return f"{np.mean(values):.6f}" if len(values) else ""


def write_plot(out: Path, summary: Mapping[str, Any], *, protocol: str) -> Path:
    """Mean IoU against clicks (per object for multi), one line per method."""
    # Figure + the Agg canvas, not pyplot: no global backend switch from inside a library
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    key = "mIoU@k" if protocol == "single" else "mIoU@clicks_per_object"
    methods = {summary["method"]: summary["metrics"], **summary["compare"]}
    for name, metrics in methods.items():
        curve = metrics[key]
        ax.plot([int(k) for k in curve], list(curve.values()), marker="o", markersize=3, label=name)
    marks = DEFAULT_THRESHOLDS if protocol == "single" else (summary.get("iou_threshold", 0.85),)
    for t in marks:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("clicks" if protocol == "single" else "clicks per object")
    ax.set_ylabel("mean IoU")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{summary['dataset_name']} ({protocol}, {summary['num_samples']} samples)")
    fig.tight_layout()
    path = out / PLOT_FILE
    fig.savefig(path)
    return path


def format_summary(summary: Mapping[str, Any]) -> str:
    """Readable lines: what ran, then one table row per method."""
    methods = {summary["method"]: summary["metrics"], **summary["compare"]}
    width = max(14, *(len(n) for n in methods))
    if summary["protocol"] == "single":
        lines = [
            (
                f"{summary['dataset_name']}: single-object protocol, {summary['num_samples']} "
                f"samples, {summary['max_clicks']} clicks, seed {summary['seed']}, "
                f"clicker {summary['clicker']}"
            )
        ]
        ks = [k for k in (1, 3, 5, 10, 20) if str(k) in summary["metrics"]["mIoU@k"]]
        head = ["NoC@85", "NoC@90", "NoF@85", "NoF@90", *[f"mIoU@{k}" for k in ks], "blobs@1"]
        rows = {
            name: [
                _num(m["NoC@85"], 2),
                _num(m["NoC@90"], 2),
                str(m["NoF@85"]),
                str(m["NoF@90"]),
                *[_num(m["mIoU@k"][str(k)], 3) for k in ks],
                _share(m.get("blob_share@1")),
            ]
            for name, m in methods.items()
        }
    else:
        lines = [
            (
                f"{summary['dataset_name']}: multi-instance protocol (MIST), "
                f"{summary['num_samples']} images, strategy {summary['strategy']}, "
                f"τ={summary['tau']}, IoU {summary['iou_threshold']}, seed {summary['seed']}"
            )
        ]
        head = ["NCI", "NFO", "NFI", "mIoU", "objects"]
        rows = {
            name: [
                _num(m["NCI"], 2),
                str(m["NFO"]),
                str(m["NFI"]),
                _num(m["mIoU"], 3),
                str(m["num_objects"]),
            ]
            for name, m in methods.items()
        }
    head += ["s/click p50", "mean"]
    lines.append(f"{'method':<{width}}  " + "  ".join(f"{h:>8}" for h in head))
    for name, cells in rows.items():
        cells += _seconds(methods[name])
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>8}" for c in cells))
    if summary.get("skipped"):
        lines.append(f"skipped {len(summary['skipped'])} sample(s) with no clickable object")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(metrics: Mapping[str, Any]) -> list[str]:
    t = metrics["seconds_per_click"]
    return [_num(t["p50"], 4), _num(t["mean"], 4)]
