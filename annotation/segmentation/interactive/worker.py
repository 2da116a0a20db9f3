"""The interactive worker's resident state: models, per-image predictors, liveness.

Imported only inside a Celery worker (it loads torch through ``inference``). Predictors are
built by name from the registry (:mod:`.methods`); the per-image ones live in the byte-bounded
LRU of :mod:`.cache`. Backbones are shared by every predictor of a (method, backbone) pair,
and a project's trained model (backbone ``model-<id>``) is loaded once per worker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from . import keys, methods
from .cache import Entry, ImageStateCache, state_nbytes

log = logging.getLogger(__name__)


class Models:
    """Predictor factories per (method, backbone): the backbone is built once and shared."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._backbones: dict[tuple[str, str], Any] = {}
        self._finders: dict[tuple[str, str], Any] = {}  # (method, backbone) → text finder
        self._lock = threading.Lock()
        from .trained import LoadedModels  # torch-free to import; loads nothing yet

        self._trained = LoadedModels(device)  # networks of the projects' trained models

    def new_predictor(self, method: str, backbone: str):
        model_id = methods.trained_model_id(backbone)
        if model_id is not None:  # a project's trained model, loaded once and shared
            return self._trained.new_predictor(model_id, method)
        registry = methods.registry()
        if backbone == methods.NO_BACKBONE:
            return registry.build_predictor(method, device=self.device)
        with self._lock:
            shared = self._backbones.get((method, backbone))
            if shared is None:
                predictor = registry.build_predictor(method, backbone=backbone, device=self.device)
                self._backbones[(method, backbone)] = getattr(predictor, "backbone", backbone)
                return predictor
        return registry.build_predictor(method, backbone=shared, device=self.device)

    def text_finder(self, method: str, backbone: str):
        """The method's text finder on ``backbone`` (``inference.TextFinding``), built on first
        use and kept: one per (method, backbone), holding the image it encoded last."""
        key = (method, backbone)
        with self._lock:
            if key not in self._finders:
                self._finders[key] = methods.registry().build_text_finder(
                    method,
                    backbone=None if backbone == methods.NO_BACKBONE else backbone,
                    device=self.device,
                )
            return self._finders[key]


class _WorkerState:
    """What one worker process keeps between tasks (built on first use)."""

    def __init__(self) -> None:
        self.cache: ImageStateCache | None = None
        self.models: Models | None = None
        self.heartbeat: threading.Event | None = None
        self.checkpoints: dict[str, Any] | None = None  # checkpoints.discover's report
        self.hostname = ""


_state = _WorkerState()


def cache() -> ImageStateCache:
    if _state.cache is None:
        from django.conf import settings

        _state.cache = ImageStateCache(settings.MASKWRIGHT["INTERACTIVE_CACHE_BYTES"])
    return _state.cache


def models() -> Models:
    if _state.models is None:
        from django.conf import settings

        _state.models = Models(settings.MASKWRIGHT["INTERACTIVE_DEVICE"])
    return _state.models


def working_rgb(image_id: int) -> tuple[np.ndarray, float]:
    """The stored image as the methods see it: H×W×3 uint8 RGB, its longest side bounded by
    ``INTERACTIVE_MAX_SIDE``, and the scale (working pixels per stored pixel, ≤ 1)."""
    from django.conf import settings
    from PIL import Image as PILImage

    from annotation.datasets.models import Image
    from annotation.datasets.storage import read_rgb

    rgb = read_rgb(Image.objects.values_list("file", flat=True).get(pk=image_id))
    height, width = rgb.shape[:2]
    max_side = settings.MASKWRIGHT["INTERACTIVE_MAX_SIDE"]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:  # methods work at a bounded size; masks are scaled back to the image
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # a writable copy, as read_rgb's (torch warns on read-only arrays)
        rgb = np.array(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR))
    return rgb, scale


def image_state(image_id: int, method: str, backbone: str) -> tuple[Entry, bool]:
    """The cached predictor of the image (built on a miss); ``(entry, was_cached)``."""
    key = (image_id, method, backbone)
    entry = cache().get(key)
    if entry is not None:
        return entry, True
    rgb, scale = working_rgb(image_id)
    predictor = models().new_predictor(method, backbone)
    predictor.set_image(rgb)
    entry = Entry(predictor, scale, state_nbytes(predictor))
    cache().put(key, entry)
    return entry, False


def image_state_unless_clicked(image_id: int, method: str, backbone: str) -> bool:
    """:func:`image_state` for a prefetch of the task's next image, stopped as soon as a click
    is queued for this worker (``dispatch.click_waiting``): the click must not wait for a
    state nobody has asked for yet. True if the state is cached; False if it stopped (what it
    computed is dropped, the cache is as it was; the next pause queues the prefetch again)."""
    from inference.interrupt import Interrupted, interruptible

    from . import dispatch

    me = hostname()
    if not me:  # not announced, so no click can name this worker: nothing to stop for
        image_state(image_id, method, backbone)
        return True
    try:
        with interruptible(lambda: dispatch.click_waiting(me)):
            image_state(image_id, method, backbone)
    except Interrupted:
        return False
    return True


def warm_up() -> None:
    """Load the default method's model and run it once on a small image, so that the first real
    click pays neither the weights nor the first-call costs of torch and numba."""
    from inference import Box, Click

    # what this worker can serve: a method needing a checkpoint only where it is on this disk
    offered = methods.offered(reports={"this worker": checkpoint_report()})
    if not offered:
        log.warning("no interactive method to warm up")
        return
    first = offered[0]
    started = time.perf_counter()
    predictor = models().new_predictor(first["name"], first["backbones"][0])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, size=(96, 128, 3), dtype=np.uint8)
    image[30:70, 40:90] += 150
    predictor.set_image(image)
    # a prompt of a kind the method declares (the first model call is the slow one)
    prompt = (
        Click(x=64.0, y=48.0, positive=True, object_id=1)
        if "click" in first["prompts"]
        else Box(x0=40.0, y0=30.0, x1=90.0, y1=70.0, object_id=1)
        if "box" in first["prompts"]
        else None
    )
    if prompt is not None:
        predictor.predict_objects([prompt])
    import torch

    log.info(
        "warmed up %s in %.2f s (torch threads %d)",
        first["name"],
        time.perf_counter() - started,
        torch.get_num_threads(),
    )


# -- liveness ----------------------------------------------------------------------------------
def checkpoint_report(refresh: bool = False) -> dict[str, Any]:
    """The checkpoints on this worker's disk (:func:`.checkpoints.discover`), looked for once
    and again on ``refresh`` (the heartbeat rescans every ``checkpoints.RESCAN_S``)."""
    if refresh or _state.checkpoints is None:
        from django.conf import settings

        from . import checkpoints

        _state.checkpoints = checkpoints.discover(settings.MASKWRIGHT["INTERACTIVE_DEVICE"])
    return _state.checkpoints


def start_heartbeat(hostname: str) -> threading.Event:
    """Refresh this worker's alive key every second until :func:`stop_heartbeat`, and beside it
    its checkpoint report (:mod:`.checkpoints`), with the same expiry. The thread touches no
    torch (see ``annotation.labeling.tasks.warm_up``)."""
    from . import checkpoints

    stop = threading.Event()
    key, weights_key = keys.alive(hostname), keys.weights(hostname)

    def beat() -> None:
        report = ""
        scanned: float | None = None  # when the disk was last looked at (monotonic)
        while not stop.is_set():
            if scanned is None or time.monotonic() - scanned >= checkpoints.RESCAN_S:
                try:  # before the first alive key: the worker appears with its checkpoints
                    report = checkpoints.encode(checkpoint_report(refresh=scanned is not None))
                except Exception:  # an unreadable disk must not stop the heartbeat
                    log.warning("looking for checkpoints failed", exc_info=True)
                scanned = time.monotonic()
            try:
                pipe = keys.redis_client().pipeline(transaction=False)
                pipe.set(key, str(time.time()), ex=keys.ALIVE_TTL_S)
                if report:
                    pipe.set(weights_key, report, ex=keys.ALIVE_TTL_S)
                pipe.execute()
            except Exception:  # Redis restarting: try again next second
                log.warning("heartbeat to Redis failed", exc_info=True)
            stop.wait(keys.HEARTBEAT_S)
        try:
            keys.redis_client().delete(key, weights_key)
        except Exception:  # shutting down: the keys expire after ALIVE_TTL_S anyway
            log.debug("could not delete the heartbeat key %s", key, exc_info=True)

    threading.Thread(target=beat, name="maskwright-heartbeat", daemon=True).start()
    _state.heartbeat = stop
    _state.hostname = hostname
    return stop


def stop_heartbeat() -> None:
    """Stop announcing this worker (its alive key is deleted): sessions stop sticking to it."""
    if _state.heartbeat is not None:
        _state.heartbeat.set()


def hostname() -> str:
    """This worker's Celery hostname once it announced itself, else ''."""
    return _state.hostname
