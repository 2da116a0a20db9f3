"""``maskwright bench m2n2``: set_image and per-click latency, beside OpenCV GrabCut.

``m2n2`` is the default (learned segment choice with the click head, three candidates per
click); ``m2n2-nohead`` the previous default, the scorer alone; ``m2n2-paper`` the paper's
hand-set choice (one mask, lite0 stages 2 + 4).
Images: the GrabCut benchmark from ../shared/data when present (else scikit-image samples),
resized to the long sides measured. Clicks come from the evaluation clicker against the
ground truth, so each new click is a realistic correction. Per-click time is the time of
``predict`` with one more click than before (the cost a person waits for).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import shared_dir

SHARED = shared_dir()


def _images(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, ground truth) pairs: GrabCut from ../shared/data, else scikit-image samples."""
    folder = SHARED / "data" / "grabcut"
    if folder.exists():
        from inference.evaluation.datasets import FolderDataset

        return [(s.image, s.gt) for s in FolderDataset(folder, limit=count)]
    from skimage import data

    pairs = []
    for name in ("astronaut", "coffee", "chelsea")[:count]:
        img = getattr(data, name)()
        gt = np.zeros(img.shape[:2], bool)
        h, w = gt.shape
        gt[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
        pairs.append((img, gt))
    return pairs


def _resize(img: np.ndarray, gt: np.ndarray, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = gt.shape
    scale = long_side / max(h, w)
    size = (round(w * scale), round(h * scale))
    return (
        np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR)),
        np.asarray(Image.fromarray(gt).resize(size, Image.Resampling.NEAREST)),
    )


def _session(predictor, img: np.ndarray, gt: np.ndarray, clicks: int) -> tuple[float, list[float]]:
    from inference.evaluation.clicker import Clicker

    started = time.perf_counter()
    predictor.set_image(img)
    set_s = time.perf_counter() - started
    clicker = Clicker(gt)
    pred = np.zeros_like(gt)
    times = []
    for _ in range(clicks):
        clicker.make_next_click(pred)
        started = time.perf_counter()
        pred = predictor.predict(clicker.clicks).mask
        times.append(time.perf_counter() - started)
    return set_s, times


def run(*, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    from inference import build_predictor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    sides = [256, 512] if quick else [256, 512, 1024]
    n_images, n_clicks = (2, 3) if quick else (5, 8)
    pairs = _images(n_images)
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, {len(pairs)} images, "
        f"{n_clicks} clicks each"
    )
    figures: dict[str, Any] = {}
    for name, method, kwargs in (
        ("m2n2", "m2n2", {"backbone": "effnet-lite0", "device": device}),
        # the previous default: the scorer alone, no click head (inference/methods/m2n2/head.py)
        ("m2n2-nohead", "m2n2", {"backbone": "effnet-lite0", "device": device, "head": None}),
        # the previous default: the paper's hand-set segment choice, no candidates
        (
            "m2n2-paper",
            "m2n2",
            {
                "backbone": "effnet-lite0",
                "device": device,
                "scorer": None,
                "backbone_options": {"stages": (2, 4)},
            },
        ),
        ("opencv-grabcut", "opencv-grabcut", {}),
    ):
        predictor = build_predictor(method, **kwargs)
        _session(predictor, *_resize(*pairs[0], 256), 2)  # warm-up: lazy imports, allocator
        for side in sides:
            sets, clicks = [], []
            by_index: list[list[float]] = [[] for _ in range(n_clicks)]
            for img, gt in pairs:
                s, t = _session(predictor, *_resize(img, gt, side), n_clicks)
                sets.append(s)
                clicks.extend(t)
                for i, v in enumerate(t):
                    by_index[i].append(v)
            p50 = statistics.median(clicks)
            growth = " ".join(f"{statistics.median(v):.3f}" for v in by_index)
            print(
                f"{name:15s} {side:5d}px  set_image p50 {statistics.median(sets):6.3f} s   "
                f"click p50 {p50:6.3f} s  p95 {np.percentile(clicks, 95):6.3f} s   "
                f"by click #: {growth}"
            )
            figures[f"{name}_{side}_set_image_s"] = round(statistics.median(sets), 4)
            figures[f"{name}_{side}_click_p50_s"] = round(p50, 4)
    figures["set_image_s"] = figures["m2n2_512_set_image_s"]
    figures["click_p50_s"] = figures["m2n2_512_click_p50_s"]
    if device == "cuda":
        figures["gpu_click_p50_s"] = figures["click_p50_s"]
    return figures
