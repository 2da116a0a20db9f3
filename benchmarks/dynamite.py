"""``maskwright bench dynamite``: DynaMITe's per-image and per-click cost.

Times ``set_image`` (backbone + pixel decoder + the click-independent transformer cache) and
``predict_objects`` as the click list grows (1, 10, 50, 100, 200 clicks spread over up to 15
objects, every 8th click on the background), for

* R50 and Swin-T at the official resize (short side 800; a 480×640 image → 800×1067, padded
  800×1088), with **random weights** — timing does not depend on the values;
* effnet-lite0 at 512 px on the long side (our offline default: ImageNet backbone, random heads).

It also measures the encoder K/V cache (exact: image-token keys/values do not depend on the
clicks) by timing the same clicks with the cache off. Memory: the bytes of the per-image state
(pixel-decoder outputs + cache), the process RSS growth (CPU) or ``max_memory_allocated`` (CUDA).
Runs on CPU, and also on CUDA when available, unless ``device`` says which.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
import torch

CLICK_COUNTS = (1, 10, 50, 100, 200)
IMAGE_HW = (480, 640)


def _clicks(n: int, seed: int = 0):
    """``n`` chronological clicks: every 8th on the background, the others cycling over up to 15
    objects, at random points of the 480×640 image."""
    from inference.structures import Click

    rng = np.random.default_rng(seed)
    h, w = IMAGE_HW
    out = []
    for k in range(n):
        object_id = 0 if k % 8 == 7 else (k % 15) + 1
        x, y = float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1))
        out.append(Click(x, y, positive=object_id > 0, object_id=object_id))
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _state_mb(predictor) -> float:
    """MiB held per image: pixel-decoder outputs and the transformer cache."""
    tensors = [*predictor._features.multi_scale, predictor._features.mask_features]
    cache = predictor._cache
    tensors += [*cache.tokens, *cache.head_features, cache.pixels]
    if cache.kv is not None:
        tensors += [t for pair in cache.kv for t in pair]
    if cache.first_q is not None:
        tensors.append(cache.first_q)
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs (the predictor synchronises CUDA)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench_model(
    name: str, config, device: str, counts, repeats: int, kv_check: int | None
) -> dict[str, Any]:
    from inference.methods.dynamite import DynaMITe, DynamitePredictor

    gc.collect()
    rss0 = _rss_mb()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    predictor = DynamitePredictor(DynaMITe(config), device=device)
    image = np.random.default_rng(0).integers(0, 255, (*IMAGE_HW, 3), dtype=np.uint8)
    predictor.set_image(image)  # warm-up: allocator, lazy imports
    set_image = _time(lambda: predictor.set_image(image), repeats)
    r = predictor._resize
    print(
        f"{name:22s} input {r.h}×{r.w} (padded {r.Hp}×{r.Wp})  set_image {set_image:7.3f} s   "
        f"per-image state {_state_mb(predictor):6.1f} MiB"
    )
    click_ms = {}
    for n in counts:
        clicks = _clicks(n)
        predictor.predict_objects(clicks[:1])  # warm-up
        seconds = _time(lambda clicks=clicks: predictor.predict_objects(clicks), repeats)
        click_ms[n] = round(seconds * 1000, 1)
        print(
            f"{name:22s} {n:4d} clicks ({len({c.object_id for c in clicks} - {0}):2d} objects)  "
            f"{seconds * 1000:9.1f} ms per click"
        )
    result: dict[str, Any] = {
        "set_image_s": round(set_image, 3),
        "click_ms": click_ms,
        "state_mb": round(_state_mb(predictor), 1),
    }
    if kv_check is not None:
        # interleaved, so that a neighbour's load on a shared machine hits both sides alike
        clicks = _clicks(kv_check)
        cached = predictor._cache
        with torch.inference_mode():
            uncached = predictor.model.transformer.prepare(predictor._features, cache_kv=False)
        runs: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(max(repeats, 2)):
            for cache, key in ((cached, "with"), (uncached, "without")):
                predictor._cache = cache
                runs[key].append(_time(lambda: predictor.predict_objects(clicks), 1))
        predictor._cache = cached
        with_cache, without = statistics.median(runs["with"]), statistics.median(runs["without"])
        print(
            f"{name:22s} K/V cache at {kv_check} clicks: {with_cache * 1000:.1f} ms with, "
            f"{without * 1000:.1f} ms without (exact; the cache holds the encoder K/V and the "
            "decoder's first q-projection)"
        )
        result["kv_cache_ms"] = {
            "with": round(with_cache * 1000, 1),
            "without": round(without * 1000, 1),
        }
    if device.startswith("cuda"):
        result["peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        result["peak_mb"] = round(_rss_mb() - rss0, 1)
    print(
        f"{name:22s} memory {'max allocated' if device.startswith('cuda') else 'RSS growth'} "
        f"{result['peak_mb']:.1f} MiB"
    )
    return result


def run(*, quick: bool = False, device: str | None = None) -> dict[str, Any]:
    from inference.methods.dynamite import DynamiteConfig

    devices = [device] if device else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"DynaMITe timing, torch threads {torch.get_num_threads()}, devices {devices}; "
        f"R50/Swin-T with random weights (timing only), effnet-lite0 with ImageNet backbone"
    )
    models = [("effnet-lite0@512", DynamiteConfig(short_side=512, max_side=512))]
    if not quick:
        models += [
            ("resnet50@800", DynamiteConfig(backbone="resnet50", pretrained_backbone=False)),
            ("swin_tiny@800", DynamiteConfig(backbone="swin_tiny", pretrained_backbone=False)),
        ]
    counts = (1, 10, 50) if quick else CLICK_COUNTS
    repeats = 1 if quick else 2
    set_image_s: dict[str, float] = {}
    click_ms: dict[str, dict[int, float]] = {}
    extra: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dev in devices:
            for name, config in models:
                key = f"{name}/{dev}"
                on_cuda = dev.startswith("cuda")
                kv_check = 10 if (quick or name.startswith("resnet")) else None
                result = _bench_model(key, config, dev, counts, 3 if on_cuda else repeats, kv_check)
                set_image_s[key] = result.pop("set_image_s")
                click_ms[key] = result.pop("click_ms")
                extra[key] = result
    print("click ms:  " + "  ".join(f"{n:>7d}" for n in counts))
    for key, row in click_ms.items():
        print(f"  {key:22s}" + "  ".join(f"{row[n]:7.1f}" for n in counts))
    return {
        "set_image_s": set_image_s,
        "click_ms": click_ms,
        "details": extra,
        "torch_threads": torch.get_num_threads(),
        "random_weights": True,
    }
