"""Find all on the interactive worker: every instance of a text in one image, as stored masks.

Imported only inside a Celery worker (it loads torch through ``inference``). The finder of a
(method, backbone) is built once and kept in the worker's models (:meth:`.worker.Models.
text_finder`); it holds the image it encoded last, and this module remembers which one that
is, so that finding another label on the same image costs no second encoding. The image is
read as a click's is (:func:`.worker.working_rgb`: the longest side bounded by
``INTERACTIVE_MAX_SIDE``), and each mask is scaled back to the stored image's size and turned
into stored RLE at once, so that at most one full-size mask exists at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from annotation.common import rle

from . import worker
from .compute import to_image_size

log = logging.getLogger(__name__)


@dataclass
class Found:
    """What one find gave: ``masks`` as stored RLE of the image's size (none empty), best score
    first, with their ``scores`` in [0, 1]; ``model_s``: seconds in the model (the image's
    encoding included when it was needed); ``encoded``: whether the image was encoded for it
    (False: the finder still held it)."""

    masks: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    model_s: float = 0.0
    encoded: bool = False


# (method, backbone) → the image its finder holds encoded. Cleared before an encoding starts:
# a failed one leaves the finder's state unknown.
_encoded: dict[tuple[str, str], int] = {}
_lock = threading.Lock()  # one find at a time per worker process: a finder holds one image
encodings = 0  # images encoded since the worker started (read by the log and by tests)


def find(
    image_id: int,
    method: str,
    backbone: str,
    text: str,
    *,
    size_hw: tuple[int, int],
    threshold: float,
    max_instances: int,
) -> Found:
    """Every instance of ``text`` in image ``image_id`` with ``method``'s text finder.

    Args:
        image_id: the stored image.
        method, backbone: a method whose metadata declares a ``text_finder``, and its backbone
            (``methods.NO_BACKBONE`` for one that takes none).
        text: what to find (a label's name).
        size_hw: the stored image's (height, width): the masks' size.
        threshold: keep instances scoring above this.
        max_instances: at most this many, the best scores.

    Raises:
        whatever building the finder raises (``WeightsNotFound`` naming the checkpoint and
        its folder), or the finder (``ValueError`` for an empty or overlong text).
    """
    global encodings
    key = (method, backbone)
    with _lock:
        finder = worker.models().text_finder(method, backbone)
        started = time.perf_counter()
        encoded = _encoded.get(key) != image_id
        if encoded:
            _encoded.pop(key, None)
            rgb, _scale = worker.working_rgb(image_id)
            finder.set_image(rgb)
            _encoded[key] = image_id
            encodings += 1
            log.info("find all: image %s encoded for %s/%s", image_id, method, backbone)
        results = finder.find(text, threshold=threshold, max_instances=max_instances)
        model_s = time.perf_counter() - started
    out = Found(model_s=model_s, encoded=encoded)
    for result in results:
        mask = to_image_size(result.mask, size_hw)
        if mask.any():  # an empty mask outlines nothing
            out.masks.append(rle.encode(mask))
            out.scores.append(float(result.score or 0.0))
    return out
