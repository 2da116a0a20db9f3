"""The goals the issues set for the benches' JSON figures, and the check behind
``maskwright bench <topic> --check``.

A bench prints its figures and nobody compares them with the goals they were built to meet, so
regressions land silently (issue 18: EXITS fell below its filled-box baseline and nobody saw).
Each goal here names one JSON key of one topic, a bound and the issue it comes from; the check
prints PASS, FAIL or MISSING for each (a figure the bench did not print is a failure) and the
command exits 1 when any goal is missed. Run ``maskwright bench <topic> --check`` (``--quick``
where the full run is too long) before every stop. Only goals whose key a bench prints are
listed; a goal stated for another protocol (``maskwright eval``) or another machine is not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["<=", ">="]


@dataclass(frozen=True)
class Goal:
    """``figures[key] op value``. ``value`` is a number, or the name of another key of the same
    figures (a peer measured in the same run: "EXITS beats the filled box"). ``device``: the
    goal holds only for figures measured there (None: anywhere). ``quick``: it also holds for a
    ``--quick`` run (same measurement, fewer samples); False where quick changes what is
    measured (fewer images, less training, smaller projects)."""

    key: str
    op: Op
    value: float | str
    why: str
    device: str | None = None
    quick: bool = False


def _ws(key: str, op: Op, value: float, why: str) -> Goal:
    return Goal(key, op, value, f"issue 5: {why}", quick=True)


def _faults(key: str, op: Op, value: float, why: str) -> Goal:
    return Goal(key, op, value, f"issue 16: {why}", quick=True)


def _exits(key: str, peer: str, why: str) -> Goal:
    return Goal(key, ">=", peer, f"issues 8, 18: {why}")


_DASHBOARD_PAGES = (
    "project_ms",
    "datasets_ms",
    "images_page_ms",
    "images_deep_page_ms",
    "tasks_ms",
    "jobs_ms",
    "review_counts_ms",
    "review_queue_ms",
)

GOALS: dict[str, tuple[Goal, ...]] = {
    "m2n2": (
        Goal("click_p50_s", "<=", 0.3, "issues 3, 18: click p50, 512 px, CPU", "cpu", True),
        Goal("set_image_s", "<=", 2.0, "issues 3, 18: set_image, 512 px, CPU", "cpu", True),
    ),
    "mis": (
        Goal("merge_img_per_s", ">=", 15, "issue 4: Ward merge only, 480x854 stride 8", None, True),
        Goal(
            "top10_ratio_confirm",
            ">=",
            2.0,
            "issue 18: top-10 precision of the ranked proposals ÷ persistence's, odd images",
        ),
    ),
    "salt": (
        Goal("miou_click", ">=", 50, "issue 4: mIoU, one click per instance, effnet-lite0"),
        Goal("update_p50_s", "<=", 0.3, "issue 4: seconds per update, 512 px, CPU", "cpu", True),
    ),
    "ws": (
        _ws("first_click_s", "<=", 1.5, "first click after opening an image"),
        _ws("click_p50_s", "<=", 0.25, "later clicks p50"),
        _ws("click_p95_s", "<=", 0.5, "later clicks p95"),
        _ws("overhead_p50_ms", "<=", 30, "overhead beyond the model's own time p50"),
        _ws("errors", "<=", 0, "20 concurrent annotators: no errors, none unanswered"),
        _ws("lost_prompts", "<=", 0, "no prompt lost, counted in Postgres"),
        _ws("kill_other_worker", ">=", 1, "after a worker kill another answers (true)"),
    ),
    "export": (
        *(
            Goal(key, "<=", 10, "issue 6: export of 10,000 instances on 1,000 images")
            for key in ("coco_rle_s", "coco_poly_s", "voc_s")
        ),
        Goal("yolo_s", "<=", 10, "issue 19: YOLO export of 10,000 instances on 1,000 images"),
    ),
    "dashboard": tuple(
        Goal(key, "<=", 300, "issue 6: page p50 with 10,000 images, 100,000 instances")
        for key in _DASHBOARD_PAGES
    ),
    "storage": (
        Goal(
            "s3_ingest_ratio",
            ">=",
            0.7,
            "issue 21: ingest into S3 at least 70 % of local disk's images/s, same zip, same run",
        ),
        Goal(
            "cold_click_extra_ms",
            "<=",
            150,
            "issue 21: first click on an image the worker fetches from S3 within local + 150 ms"
            " (median over interleaved image pairs)",
            quick=True,
        ),
        Goal(
            "warm_click_ratio",
            "<=",
            1.1,
            "issue 21: warm (worker's cache) first click 'equal to local', read as within 10 %"
            " of local disk's (median of warm ÷ local over interleaved image pairs)",
            quick=True,
        ),
    ),
    "faults": (
        _faults("worker_restarted", ">=", 1, "a killed worker is restarted (true)"),
        _faults("click_after_kill_s", "<=", 10, "click answered after a worker kill"),
        _faults("stale_masks", "<=", 0, "no mask older than its prompt log"),
        _faults("stuck_jobs", "<=", 0, "no job left running after a crash"),
        _faults("lost_prompts", "<=", 0, "no prompt lost"),
        _faults("lost_masks", "<=", 0, "no saved mask lost"),
        _faults("half_images", "<=", 0, "no half-stored image"),
    ),
    "sam": (
        Goal(
            "sam2_hiera_large_cuda_prompt_ms",
            "<=",
            15,
            "issue 20: SAM 2.1 Hiera-L ms per prompt after set_image, 1024x768, H100",
            "cuda",
        ),
    ),
    "exits": (
        _exits("exits_iou", "box_iou", "EXITS beats the filled box on coco_sample128"),
        _exits("exits_iou", "grabcut_iou", "EXITS beats GrabCut-in-box on coco_sample128"),
        _exits("grabcut_set_exits_iou", "grabcut_set_box_iou", "EXITS beats the box on GrabCut"),
        _exits(
            "grabcut_set_exits_iou",
            "grabcut_set_grabcut_iou",
            "EXITS beats GrabCut-in-box on GrabCut",
        ),
    ),
}

# Library benches that take CUDA when present unless ``--device`` says otherwise; the others
# (and the platform's, whose workers run on CPU) measure on CPU.
CUDA_WHEN_PRESENT = frozenset({"m2n2", "sam"})


def measured_device(topic: str, device: str | None) -> str:
    """The device a topic's figures come from: ``device`` ("cuda:0" → "cuda"), else the
    bench's own default."""
    if device:
        return device.split(":")[0]
    if topic in CUDA_WHEN_PRESENT:
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def _line(goal: Goal, figures: dict[str, Any]) -> str:
    bound: Any
    if isinstance(goal.value, str):  # a peer figure of the same run
        bound = figures.get(goal.value)
        target = f"{goal.value}={json.dumps(bound)}"
    else:
        bound, target = goal.value, f"{goal.value:g}"
    tail = f"(goal {goal.op} {target}: {goal.why})"
    value = figures.get(goal.key)
    if value is None or bound is None:
        missing = goal.key if value is None else goal.value
        return f"MISSING {missing} {tail}"
    shown = f"{goal.key}={json.dumps(value)}"
    if not (_number(value) and _number(bound)):
        return f"FAIL {shown} not a number {tail}"
    met = value <= bound if goal.op == "<=" else value >= bound
    return f"{'PASS' if met else 'FAIL'} {shown} {tail}"


def check(topic: str, figures: dict[str, Any], *, quick: bool, device: str | None) -> list[str]:
    """One line per goal of ``topic`` that applies to these figures: ``PASS key=value (goal <=
    x: why)``, ``FAIL …``, or ``MISSING key (…)`` when the figures lack it. Goals for another
    device (``device`` None: unknown, so only device-free goals apply), and goals without
    ``quick`` on a quick run, are left out."""
    lines = []
    for goal in GOALS.get(topic, ()):
        if quick and not goal.quick:
            continue
        if goal.device is not None and goal.device != device:
            continue
        lines.append(_line(goal, figures))
    return lines


def missed(lines: list[str]) -> bool:
    """Whether any line of :func:`check` is a FAIL or a MISSING."""
    return any(not line.startswith("PASS") for line in lines)
