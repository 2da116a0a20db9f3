"""Masks from the prompt log: replay an object's active prompts through a method.

The state of an object is its prompt list, so every answer is a pure function of the log: a
worker that never saw the image (the previous one died) gives the same mask. Prompts are plain
dicts as stored (``{"kind", "payload", "method"}``, oldest first). Manual brush and eraser
strokes (kind ``edit``) are applied, in order, on top of the method's mask.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from annotation.common import rle

log = logging.getLogger(__name__)

# Methods that answer for every object of the image at once from all their prompts.
MULTI_OBJECT = frozenset({"salt", "dynamite"})
SCRIBBLE_CLICKS = 8  # points a click-based method reads along a scribble
MODEL_KINDS = frozenset({"click", "scribble", "extreme_points"})  # prompts a method reads
# A pseudo "prompt" the worker adds first for an object that came with a mask (a pseudo label
# to fix, an import): brush edits apply on top of it until a method prompt replaces it.
BASE = "base"


@dataclass
class Computed:
    masks: dict[int, np.ndarray]  # instance id → H×W bool at the stored image's size
    model_s: float
    cached: bool


def _along(points: list[list[float]], n: int) -> list[tuple[float, float]]:
    """``n`` points evenly spaced by arc length along a polyline (its ends included)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 1:
        return [tuple(pts[0])]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return [tuple(pts[0])]
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0, total, min(n, max(2, int(total) + 1)))
    return list(zip(np.interp(at, cum, pts[:, 0]), np.interp(at, cum, pts[:, 1])))


def clicks_of(prompts: list[dict[str, Any]], scale: float, size_hw: tuple[int, int]):
    """The click-like prompts as ``inference`` clicks at the working scale."""
    from inference import Click

    height, width = size_hw

    def click(x: float, y: float, positive: bool) -> Click:
        return Click(x=min(width - 1.0, x * scale), y=min(height - 1.0, y * scale), positive=positive)

    out = []
    for p in prompts:
        kind, payload = p["kind"], p["payload"]
        if kind == "click":
            out.append(click(payload["x"], payload["y"], payload["positive"]))
        elif kind == "scribble":
            out.extend(click(x, y, payload["positive"]) for x, y in _along(payload["points"], SCRIBBLE_CLICKS))
        elif kind == "extreme_points":
            out.extend(click(x, y, True) for x, y in payload["points"])
    return out


def apply_edits(mask: np.ndarray, prompts: list[dict[str, Any]]) -> np.ndarray:
    """Paint or erase the brush strokes (kind ``edit``) onto ``mask`` in log order."""
    edits = [p["payload"] for p in prompts if p["kind"] == "edit"]
    if not edits:
        return mask
    canvas = PILImage.fromarray(mask.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for e in edits:
        value = 1 if e["mode"] == "paint" else 0
        width = max(1, round(e["width"]))
        pts = [(float(x), float(y)) for x, y in e["points"]]
        if len(pts) > 1:
            draw.line(pts, fill=value, width=width, joint="curve")
        r = width / 2
        for x, y in pts[:1] + pts[-1:]:  # round caps (joints are rounded by the line itself)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=value)
    return np.asarray(canvas, dtype=bool)


def _to_image_size(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    height, width = size_hw
    if mask.shape == (height, width):
        return mask
    return np.asarray(PILImage.fromarray(mask).resize((width, height), PILImage.Resampling.NEAREST))


def compute(
    image_id: int,
    size_hw: tuple[int, int],
    method: str,
    backbone: str,
    objects: dict[int, list[dict[str, Any]]],
) -> Computed:
    """Masks for ``objects`` (instance id → its active prompts, oldest first) on the image.

    ``size_hw``: the stored image's (height, width). Single-object methods get each object's
    clicks; SALT gets every object's prompts at once and answers for all of them.
    """
    from .worker import image_state

    entry, cached = image_state(image_id, method, backbone)
    predictor, scale = entry.predictor, entry.scale
    work_hw = predictor.image_size
    started = time.perf_counter()
    masks: dict[int, np.ndarray] = {}
    if method == "dynamite":
        masks = _segment_dynamite(predictor, scale, work_hw, objects)
    elif method in MULTI_OBJECT:
        masks = _segment_all(predictor, scale, work_hw, objects)
    else:
        for instance_id, prompts in objects.items():
            clicks = clicks_of(prompts, scale, work_hw)
            if any(c.positive for c in clicks):
                result = predictor.predict(clicks)
                masks[instance_id] = result.mask
                log.debug("object %s: %s", instance_id, {k: round(v, 4) for k, v in result.timings.items()})
            else:
                masks[instance_id] = np.zeros(work_hw, dtype=bool)
    model_s = time.perf_counter() - started
    for k, prompts in objects.items():
        base = next((p["payload"] for p in prompts if p["kind"] == BASE), None)
        if base is not None and k in masks and not any(p["kind"] in MODEL_KINDS for p in prompts):
            masks[k] = rle.decode(base)  # the mask it came with, at the image's size
    out = {k: apply_edits(_to_image_size(m, size_hw), objects[k]) for k, m in masks.items()}
    return Computed(out, model_s, cached)


def _segment_all(predictor, scale: float, work_hw, objects: dict[int, list[dict[str, Any]]]) -> dict[int, np.ndarray]:
    """SALT: each object is its own instance (class 1); negative prompts are background."""
    from inference import Scribble

    height, width = work_hw
    scribbles = []
    for instance_id, prompts in objects.items():
        for p in prompts:
            kind, payload = p["kind"], p["payload"]
            if kind not in MODEL_KINDS:
                continue
            positive = payload.get("positive", True)
            if kind == "click":
                pts, brush = [(payload["x"], payload["y"])], 1.0
            else:
                pts, brush = payload["points"], payload.get("width", 5.0)
            pts = tuple((min(width - 1.0, x * scale), min(height - 1.0, y * scale)) for x, y in pts)
            label, instance = (1, instance_id) if positive else (0, 0)
            scribbles.append(Scribble(pts, max(1.0, brush * scale), label, instance))
    if not any(s.label for s in scribbles):
        return {k: np.zeros(work_hw, dtype=bool) for k in objects}
    if all(s.label for s in scribbles):
        # nothing marked as background yet: the image border is, as SALT's one-object mode
        # assumes, so that a first stroke does not label the whole image
        w, h = width - 1.0, height - 1.0
        scribbles.insert(0, Scribble(((0.0, 0.0), (w, 0.0), (w, h), (0.0, h), (0.0, 0.0)), 1.0, 0, 0))
    result = predictor.segment(scribbles)
    return {k: result.mask(1, k) if (1, k) in result.objects else np.zeros(work_hw, dtype=bool) for k in objects}


def _segment_dynamite(predictor, scale: float, work_hw, objects: dict[int, list[dict[str, Any]]]) -> dict[int, np.ndarray]:
    """DynaMITe: every object's clicks at once, in the order they were made (prompt ids are
    global, so they order clicks across objects, which the model's temporal encoding reads).
    A negative click on any object is a background click; the masks come back disjoint."""
    from inference.evaluation.clicker import ObjectClick

    events = []
    for instance_id, prompts in objects.items():
        for p in prompts:
            for c in clicks_of([p], scale, work_hw):
                events.append((p.get("id", 0), instance_id if c.positive else 0, c))
    events.sort(key=lambda e: e[0])  # stable: a scribble's points keep their order
    empty = np.zeros(work_hw, dtype=bool)
    if not any(owner for _, owner, _ in events):
        return {k: empty for k in objects}
    masks = predictor.predict_objects([ObjectClick(object_id=owner, click=c) for _, owner, c in events])
    return {k: np.asarray(masks.get(k, empty), dtype=bool) for k in objects}
