"""``maskwright bench sam``: the SAM family's cost at real shapes: ``set_image`` s, per-prompt ms.

Every architecture (SAM ViT-B/L/H, SAM 2.1 Hiera-T/S/B+/L, SAM 3's tracker, and SAM 3's text
path) is built at its published shapes with random weights
(:mod:`inference.methods.sam.shapes`; no checkpoint needed, masks mean nothing) and served by
our :class:`~inference.methods.sam.predictor.SamFamilyPredictor` (text: ``TextFinder``).

Image: a GrabCut photo from ../shared/data resized to 1024×768 (W×H), else a synthetic one.
``set_image``: median of timed runs after one warm-up. Clicks: a correction sequence from the
evaluation clicker against the ground truth (made once, on the warm-up's masks), replayed with
the predictor's memory cleared, so each ``predict_prompts`` extends the previous prompts (click
1, then clicks 1–2, …) and runs the prompt encoder + mask decoder once, with the previous
logits as mask prompt; ``prompt_ms`` is the median over every click of every replay. Box: one
box around the object, memory cleared each time. Text: ``TextFinder.find("person")`` with the
text's encoding cached (the first ``find`` of a text also runs the text encoder).

Devices: ``--device`` alone, else CPU plus CUDA when present. ``--quick``: ViT-B and Hiera-T
only, fewer runs. The last line is JSON: ``set_image_s``, ``prompt_ms``, ``box_ms``,
``params_m`` and ``build_s``, each ``{"<family>/<variant>/<device>": figure}`` (text:
``sam3/text/<device>``, its ``find`` in ``prompt_ms``), and
``sam2_hiera_large_cuda_prompt_ms`` for the H100 goal when CUDA was measured.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import shared_dir

IMAGE_WH = (1024, 768)  # a typical photo, landscape
QUICK_ARCHITECTURES = (("sam", "vit-b"), ("sam2", "hiera-tiny"))
HUGE_PARAMS = 150e6  # above this, a CPU run times its warm-up alone (:func:`measure_prompts`)
TEXT = "person"

Loader = Callable[[str, str, str], Any]  # (family, variant, device) → LoadedSam
TextLoader = Callable[[], tuple[Any, Any]]  # () → (Sam3Model, Sam3Processor)


def photo() -> tuple[np.ndarray, np.ndarray]:
    """(768×1024×3 uint8 RGB, 768×1024 bool object mask): the first GrabCut image when
    ../shared/data/grabcut is present, resized; else smooth noise with a bright ellipse."""
    width, height = IMAGE_WH
    folder = shared_dir() / "data" / "grabcut"
    if folder.exists():
        from inference.evaluation.datasets import FolderDataset

        sample = next(iter(FolderDataset(folder, limit=1)))
        image = Image.fromarray(sample.image).resize(IMAGE_WH, Image.Resampling.BILINEAR)
        gt = Image.fromarray(sample.gt).resize(IMAGE_WH, Image.Resampling.NEAREST)
        return np.array(image), np.array(gt).astype(bool)  # writable copies
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8)
    image = np.array(Image.fromarray(coarse).resize(IMAGE_WH, Image.Resampling.BICUBIC))
    y, x = np.ogrid[:height, :width]
    gt = ((x - width / 2) / (width / 4)) ** 2 + ((y - height / 2) / (height / 4)) ** 2 <= 1
    image[gt] = np.clip(image[gt].astype(int) + 80, 0, 255).astype(np.uint8)
    return image, gt


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: str) -> float:
    """Seconds ``fn()`` takes, the device's queued work included."""
    _sync(device)
    started = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - started


def _box(gt: np.ndarray) -> Any:
    from inference import Box

    ys, xs = np.nonzero(gt)
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def measure_prompts(
    loaded: Any, image: np.ndarray, gt: np.ndarray, *, runs: int, clicks: int
) -> dict[str, Any]:
    """``set_image`` seconds and per-click / per-box milliseconds (medians) of one model.

    ``runs``: timed runs after one warm-up; 0: the warm-up's ``set_image`` is the one timed
    (a huge encoder on a small CPU: a run costs minutes) and the prompts are replayed once.
    ``clicks``: length of the click sequence."""
    from inference.evaluation.clicker import Clicker
    from inference.methods.sam.predictor import SamFamilyPredictor

    predictor = SamFamilyPredictor(loaded)
    device = loaded.device
    # warm-up: lazy imports, allocator, kernels
    first = _timed(lambda: predictor.set_image(image), device)
    clicker, pred = Clicker(gt), np.zeros_like(gt)
    for _ in range(clicks):  # the sequence, on the warm-up's own masks
        if clicker.make_next_click(pred) is None:
            break
        pred = predictor.predict_prompts(clicker.clicks).mask
    sequence, box = clicker.clicks, _box(gt)
    predictor.predict_prompts([box])
    sets = [_timed(lambda: predictor.set_image(image), device) for _ in range(runs)] or [first]
    per_click, per_box = [], []
    for _ in range(max(runs, 1)):
        predictor.set_state(None)  # forget: each prompt list below runs the decoder
        for k in range(1, len(sequence) + 1):
            per_click.append(_timed(lambda k=k: predictor.predict_prompts(sequence[:k]), device))
        predictor.set_state(None)
        per_box.append(_timed(lambda: predictor.predict_prompts([box]), device))
    return {
        "set_image_s": statistics.median(sets),
        "prompt_ms": 1000 * statistics.median(per_click),
        "box_ms": 1000 * statistics.median(per_box),
        "clicks": len(sequence),
    }


def measure_text(
    model: Any, processor: Any, device: str, image: np.ndarray, *, runs: int
) -> dict[str, Any]:
    """``TextFinder.set_image`` seconds, ``find(TEXT)`` ms (text cached) and the first
    ``find``'s ms (text encoder included), medians; and how many instances were found."""
    from inference.methods.sam.text import TextFinder

    finder = TextFinder(model, processor, device)
    first = _timed(lambda: finder.set_image(image), device)  # warm-up (timed when runs is 0)
    first_ms = 1000 * _timed(lambda: finder.find(TEXT), device)
    sets = [_timed(lambda: finder.set_image(image), device) for _ in range(runs)] or [first]
    finds = [_timed(lambda: finder.find(TEXT), device) for _ in range(max(runs, 3))]
    return {
        "set_image_s": statistics.median(sets),
        "prompt_ms": 1000 * statistics.median(finds),
        "first_ms": first_ms,
        "instances": len(finder.find(TEXT)),
    }


def _devices(device: str | None) -> list[str]:
    if device:
        return [device]
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _runs(params: float, device: str, quick: bool) -> int:
    if quick:
        return 2
    if device == "cpu" and params > HUGE_PARAMS:
        return 0  # a huge encoder takes minutes a run on a small CPU: time the warm-up
    return 3 if device == "cpu" else 10


def _runs_text(runs: int, prompts: str = "prompts replayed once") -> str:
    if runs == 0:
        return f"set_image: the warm-up run alone, {prompts}"
    return f"median of {runs} runs after a warm-up"


def run(
    *,
    quick: bool = False,
    device: str | None = None,
    loader: Loader | None = None,
    text_loader: TextLoader | None = None,
    architectures: tuple[tuple[str, str], ...] | None = None,
) -> dict[str, Any]:
    """Measure and print one line per architecture and device; return the figures (module
    docstring). ``loader``, ``text_loader``, ``architectures``: substitutes for tests (default:
    :func:`~inference.methods.sam.shapes.random_loaded`, ``random_text_model``, every
    architecture, or the smallest of SAM and SAM 2 with ``quick``)."""
    from inference.methods.sam import shapes

    loader = loader or shapes.random_loaded
    text_loader = text_loader or shapes.random_text_model
    if architectures is None:
        architectures = QUICK_ARCHITECTURES if quick else shapes.ARCHITECTURES
    with_text = not quick
    image, gt = photo()
    clicks = 3 if quick else 5
    print(
        f"image {image.shape[1]}×{image.shape[0]}, torch threads {torch.get_num_threads()}, "
        f"{clicks} clicks, random weights at real shapes"
    )
    figures: dict[str, Any] = {
        key: {} for key in ("set_image_s", "prompt_ms", "box_ms", "params_m", "build_s")
    }
    for dev in _devices(device):
        for family, variant in architectures:
            started = time.perf_counter()
            loaded = loader(family, variant, dev)
            built = time.perf_counter() - started
            params = shapes.parameter_count(loaded.model)
            runs = _runs(params, dev, quick)
            got = measure_prompts(loaded, image, gt, runs=runs, clicks=clicks)
            key = f"{family}/{variant}/{dev}"
            _store(figures, key, got, params, built)
            print(
                f"{family + '/' + variant:21s} {dev:4s}  set_image {got['set_image_s']:6.2f} s  "
                f"prompt p50 {got['prompt_ms']:7.1f} ms  box p50 {got['box_ms']:7.1f} ms  "
                f"params {params / 1e6:4.0f} M  ({_runs_text(runs)}, built in {built:.1f} s)",
                flush=True,
            )
            del loaded
            _free(dev)
        if with_text:
            started = time.perf_counter()
            model, processor = text_loader()
            built = time.perf_counter() - started
            params = shapes.parameter_count(model)
            runs = _runs(params, dev, quick)
            got = measure_text(model, processor, dev, image, runs=runs)
            _store(figures, f"sam3/text/{dev}", got, params, built)
            print(
                f"{'sam3/text':21s} {dev:4s}  set_image {got['set_image_s']:6.2f} s  "
                f"find({TEXT!r}) p50 {got['prompt_ms']:7.1f} ms (first {got['first_ms']:.0f} ms,"
                f" {got['instances']} found)  params {params / 1e6:4.0f} M  "
                f"({_runs_text(runs, 'find: 3 runs')}, built in {built:.1f} s)",
                flush=True,
            )
            del model, processor
            _free(dev)
    goal_key = "sam2/hiera-large/cuda"
    if goal_key in figures["prompt_ms"]:
        figures["sam2_hiera_large_cuda_prompt_ms"] = figures["prompt_ms"][goal_key]
    return figures


def _store(
    figures: dict[str, Any], key: str, got: dict[str, Any], params: int, built: float
) -> None:
    figures["set_image_s"][key] = round(got["set_image_s"], 3)
    figures["prompt_ms"][key] = round(got["prompt_ms"], 2)
    if "box_ms" in got:
        figures["box_ms"][key] = round(got["box_ms"], 2)
    figures["params_m"][key] = round(params / 1e6, 1)
    figures["build_s"][key] = round(built, 2)


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
