"""Interactive-segmentation metrics: IoU, NoC / NoF, mIoU@k, timing, and MIST's NCI/NFO/NFI.

Plain functions over numbers, so the loop, the CLI and tests share one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data import iou  # noqa: F401  (defined below the evaluation, re-exported here)

DEFAULT_MAX_CLICKS = 20
DEFAULT_THRESHOLDS = (0.85, 0.90)
MIST_THRESHOLD = 0.85


def threshold_key(threshold: float) -> str:
    """``0.85`` → ``"85"``, for names such as ``NoC@85``."""
    return f"{threshold * 100:g}"


def noc(ious: Sequence[float], threshold: float, max_clicks: int = DEFAULT_MAX_CLICKS) -> int:
    """Number of clicks: the 1-based index of the first IoU ≥ ``threshold``, else ``max_clicks``.

    ``ious[k - 1]`` is the IoU after ``k`` clicks; only the first ``max_clicks`` count.
    """
    for k, value in enumerate(ious[:max_clicks], start=1):
        if value >= threshold:
            return k
    return max_clicks


def failed(ious: Sequence[float], threshold: float, max_clicks: int = DEFAULT_MAX_CLICKS) -> bool:
    """True if no IoU within ``max_clicks`` reaches ``threshold`` (one NoF count).

    This is spec A4.3's NFO ("never reaching θ"); RITM's script counts ``noc >= max_clicks``,
    which also counts an object first reaching θ exactly at the last click.
    """
    return not any(value >= threshold for value in ious[:max_clicks])


def miou_at(curves: Sequence[Sequence[float]], max_clicks: int = DEFAULT_MAX_CLICKS) -> list[float]:
    """Mean over samples of the IoU after k = 1..max_clicks clicks (curves of ≥ max_clicks)."""
    if not curves:
        return []
    table = np.asarray([list(c[:max_clicks]) for c in curves], dtype=np.float64)
    return [float(v) for v in table.mean(axis=0)]


def timing_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50 and mean of per-click seconds (None when nothing was timed)."""
    if len(seconds) == 0:
        return {"p50": None, "mean": None}
    values = np.asarray(seconds, dtype=np.float64)
    return {"p50": float(np.median(values)), "mean": float(values.mean())}


# A first click whose mask overlaps its object this little is a blob, not a start (issue 18).
BLOB_IOU = 0.2


def single_summary(
    curves: Sequence[Sequence[float]],
    seconds: Sequence[float] = (),
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    max_clicks: int = DEFAULT_MAX_CLICKS,
) -> dict[str, Any]:
    """NoC@θ (mean), NoF@θ (count), mIoU@1..max_clicks, the share of first clicks that return
    a blob (IoU < :data:`BLOB_IOU`) and seconds per click.

    ``curves``: one IoU-after-each-click list per sample. ``seconds``: every predict's time.
    """
    summary: dict[str, Any] = {"num_samples": len(curves)}
    for t in thresholds:
        nocs = [noc(c, t, max_clicks) for c in curves]
        summary[f"NoC@{threshold_key(t)}"] = float(np.mean(nocs)) if nocs else None
    for t in thresholds:
        summary[f"NoF@{threshold_key(t)}"] = sum(failed(c, t, max_clicks) for c in curves)
    summary["mIoU@k"] = miou_at(curves, max_clicks)
    firsts = [c[0] for c in curves if len(c)]
    summary["blob_share@1"] = float(np.mean([v < BLOB_IOU for v in firsts])) if firsts else None
    summary["seconds_per_click"] = timing_summary(seconds)
    return summary


def mist_summary(
    final_ious: Sequence[Sequence[float]],
    interactions: Sequence[int],
    *,
    threshold: float = MIST_THRESHOLD,
) -> dict[str, Any]:
    """DynaMITe's multi-instance metrics (spec A4.2), one entry per image.

    ``final_ious[i]``: every object's IoU after image i's last prediction; ``interactions[i]``:
    clicks used in image i, its N initial clicks included.

    * NCI: mean over images of interactions / N;
    * NFO: number of objects whose final IoU < threshold (a count);
    * NFI: number of images with at least one such object (a count);
    * mIoU: mean over images of the image's mean final IoU.
    """
    if len(final_ious) != len(interactions):
        raise ValueError("final_ious and interactions must have one entry per image")
    per_image = [(list(ious), n) for ious, n in zip(final_ious, interactions) if len(ious)]
    if not per_image:
        return {"NCI": None, "NFO": 0, "NFI": 0, "mIoU": None, "num_images": 0, "num_objects": 0}
    failures = [sum(v < threshold for v in ious) for ious, _ in per_image]
    return {
        "NCI": float(np.mean([n / len(ious) for ious, n in per_image])),
        "NFO": int(sum(failures)),
        "NFI": int(sum(f > 0 for f in failures)),
        "mIoU": float(np.mean([np.mean(ious) for ious, _ in per_image])),
        "num_images": len(per_image),
        "num_objects": int(sum(len(ious) for ious, _ in per_image)),
    }
