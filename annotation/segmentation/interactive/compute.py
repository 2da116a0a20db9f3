"""Masks from the prompt log: replay the objects' active prompts through a method.

The state of an object is its prompt list, so every answer is a pure function of the log: a
worker that never saw the image (the previous one died) gives the same mask. Prompt rows are
plain dicts as stored (``{"id", "kind", "payload", "method"}``, oldest first); they become the
library's typed prompts (:func:`typed_prompt`) at the method's working scale, and one call of
``predict_objects`` answers every object. Manual brush and eraser strokes (kind ``edit``) are
applied, in order, on top of the method's mask. An object that came with a mask (an import, a
pseudo label: its ``base`` row) gives it to a method that refines prior masks (``PRIOR_KIND``
among its prompts) as a ``PriorMask``; other methods start from nothing.

Candidates: a method may rank alternatives (``MaskResult.candidates``, best first). A logged
``candidate`` prompt picks one of them for its object's newest prediction (:func:`choice_of`);
the object's next method prompt resets the choice to 0, and undoing that prompt brings the
choice back, since both are read from the log on every replay.
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

from . import methods
from .methods import CANDIDATE, EDIT, MAX_CANDIDATES
from .request import MaskRequest

log = logging.getLogger(__name__)

# A pseudo "prompt" the worker adds first for an object that came with a mask (a pseudo label
# to fix, an import): brush edits apply on top of it until a method prompt replaces it, and a
# method that refines prior masks starts from it (priors_of).
BASE = "base"


@dataclass
class Computed:
    masks: dict[int, np.ndarray]  # instance id → H×W bool at the stored image's size
    model_s: float
    cached: bool
    # instance id → {"count", "index", "scores"} of its prediction (see :func:`choose`), or
    # None for an object no method answered (only a base mask and brush edits)
    candidates: dict[int, dict[str, Any] | None]


def typed_prompt(kind: str, payload: dict[str, Any], object_id: int):
    """The ``inference`` prompt of a logged row (payloads as ``labeling.prompts`` validated
    them), at the stored image's scale; None for a kind the library does not know."""
    import inference

    if kind == "click":
        return inference.Click(
            x=payload["x"], y=payload["y"], positive=payload["positive"], object_id=object_id
        )
    if kind == "scribble":
        points = tuple((float(x), float(y)) for x, y in payload["points"])
        return inference.Scribble(
            points=points,
            width=payload.get("width", 5.0),
            positive=payload.get("positive", True),
            object_id=object_id,
        )
    if kind == "extreme_points":
        return inference.ExtremePoints.from_points(
            [tuple(p) for p in payload["points"]], object_id=object_id
        )
    if kind == "box":
        return inference.Box(
            x0=payload["x0"],
            y0=payload["y0"],
            x1=payload["x1"],
            y1=payload["y1"],
            object_id=object_id,
        )
    if kind == "text":
        return inference.Text(payload["text"], object_id=object_id)
    return None


def prompts_of(
    objects: dict[int, list[dict[str, Any]]],
    accepted: tuple[str, ...],
    scale: float,
    size_hw: tuple[int, int],
) -> list:
    """Every object's prompts of an ``accepted`` kind as typed prompts at the working scale, in
    the order they were made (prompt ids are global, so they order prompts across objects,
    which multi-object methods read)."""
    height, width = size_hw
    rows = sorted(
        (
            (p.get("id", 0), instance_id, p)
            for instance_id, prompts in objects.items()
            for p in prompts
            if p["kind"] in accepted
        ),
        key=lambda row: row[0],
    )
    out = []
    for _, instance_id, p in rows:
        prompt = typed_prompt(p["kind"], p["payload"], instance_id)
        if prompt is not None:
            out.append(prompt.scaled(scale, height, width))
    return out


def priors_of(
    objects: dict[int, list[dict[str, Any]]],
    accepted: tuple[str, ...],
    scale: float,
    size_hw: tuple[int, int],
) -> list:
    """The stored mask each object had before its first prompt (an import, a pseudo label:
    ``Instance.base_mask``) as a ``PriorMask`` at the working size, for the objects that have a
    prompt the method reads: the method refines it instead of starting from nothing."""
    import inference

    height, width = size_hw
    out = []
    for instance_id, rows in objects.items():
        base = next((p["payload"] for p in rows if p["kind"] == BASE), None)
        if base is None or not any(p["kind"] in accepted for p in rows):
            continue
        prior = inference.PriorMask(rle.decode(base).astype(bool), object_id=instance_id)
        out.append(prior.scaled(scale, height, width))
    return out


def apply_edits(mask: np.ndarray, prompts: list[dict[str, Any]]) -> np.ndarray:
    """Paint or erase the brush strokes (kind ``edit``) onto ``mask`` in log order."""
    edits = [p["payload"] for p in prompts if p["kind"] == EDIT]
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


def choice_of(prompts: list[dict[str, Any]]) -> int:
    """The candidate index chosen for the object's newest prediction: that of the last
    ``candidate`` row after the object's last method prompt, else 0. A choice belongs to the
    prompt list it was made on: any later click, box, … starts from the best mask again."""
    from inference import PROMPT_KINDS

    index = 0
    for p in prompts:
        if p["kind"] == CANDIDATE:
            index = p["payload"]["index"]
        elif p["kind"] in PROMPT_KINDS:
            index = 0
    return index


def choose(result: Any, index: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The mask of candidate ``index`` of a ``MaskResult`` and what the page shows about it:
    ``{"count", "index", "scores"}`` (scores rounded to 3 places, None where the method gave
    none). The choosable list is ``result.candidates`` (at most :data:`MAX_CANDIDATES`), or
    the result itself when it has none. An index past the list is clamped to its last entry
    (the page cannot know the count when it logs a choice; the reply says which was used)."""
    options = list(result.candidates[:MAX_CANDIDATES]) or [result]
    chosen = min(max(index, 0), len(options) - 1)
    scores = [None if c.score is None else round(float(c.score), 3) for c in options]
    info = {"count": len(options), "index": chosen, "scores": scores}
    return np.asarray(options[chosen].mask, dtype=bool), info


def to_image_size(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``mask`` (h×w bool at the working scale) at the stored image's ``size_hw`` (nearest)."""
    height, width = size_hw
    if mask.shape == (height, width):
        return mask
    return np.asarray(PILImage.fromarray(mask).resize((width, height), PILImage.Resampling.NEAREST))


def compute(request: MaskRequest, objects: dict[int, list[dict[str, Any]]]) -> Computed:
    """Masks for ``objects`` (instance id → its active prompts, oldest first) on the request's
    image, with the request's method: one ``predict_objects`` call for all of them (a
    single-object method answers each object from its own prompts)."""
    from inference import PRIOR_KIND

    from .worker import image_state

    found = methods.info(request.method)
    if found is None:
        raise LookupError(f"method {request.method!r} is not registered on this worker")
    entry, cached = image_state(request.image_id, request.method, request.backbone)
    predictor, scale = entry.predictor, entry.scale
    work_hw = predictor.image_size
    started = time.perf_counter()
    prompts = prompts_of(objects, found.prompts, scale, work_hw)
    if PRIOR_KIND in found.prompts:
        prompts = priors_of(objects, found.prompts, scale, work_hw) + prompts
    results = predictor.predict_objects(prompts) if prompts else {}
    model_s = time.perf_counter() - started
    masks: dict[int, np.ndarray] = {}
    candidates: dict[int, dict[str, Any] | None] = {}
    for k, rows in objects.items():
        base = next((p["payload"] for p in rows if p["kind"] == BASE), None)
        if base is not None and not any(p["kind"] in found.prompts for p in rows):
            masks[k], candidates[k] = rle.decode(base), None  # the mask it came with
        elif k in results:
            masks[k], candidates[k] = choose(results[k], choice_of(rows))
        else:
            masks[k], candidates[k] = np.zeros(work_hw, dtype=bool), None
    out = {k: apply_edits(to_image_size(m, request.size_hw), objects[k]) for k, m in masks.items()}
    return Computed(out, model_s, cached, candidates)
