"""The interactive worker's resident state: models, per-image predictor state, liveness.

Imported only inside a Celery worker (it loads torch through ``inference``). One predictor per
(image, method, backbone) holds that image's expensive state (features, the M2N2 transition
matrix, SALT's graph); they live in an LRU cache bounded in bytes. Models (backbones) are
shared by every predictor of a (method, backbone) pair and loaded once per worker.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ALIVE_TTL_S = 3
MODEL_PREFIX = "model-"  # a "backbone" naming a project's trained model: model-<id>
HEARTBEAT_S = 1.0


def _nbytes(value: Any, seen: set[int], depth: int = 0) -> int:
    """Bytes held by arrays and tensors reachable from ``value`` (not the shared backbone)."""
    import torch

    if id(value) in seen or depth > 4:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v, seen, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v, seen, depth + 1) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module):
        return sum(_nbytes(v, seen, depth + 1) for k, v in vars(value).items() if k != "backbone")
    try:  # scipy sparse matrices
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    except AttributeError:
        return 0


@dataclass
class Entry:
    predictor: Any
    scale: float  # working pixels per stored pixel (≤ 1)
    nbytes: int


class ImageStateCache:
    """LRU of per-image predictors, bounded in bytes (the newest entry always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and self.total_bytes > self.max_bytes:
            evicted, _ = self._entries.popitem(last=False)
            log.info("image state cache: evicted %s", evicted)

    @property
    def total_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


class Models:
    """Predictor factories per (method, backbone): the backbone is built once and shared."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._backbones: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        from .model_files import LoadedModels  # torch-free to import; loads nothing yet

        self._trained = LoadedModels(device)  # networks of the projects' trained models

    def new_predictor(self, method: str, backbone: str):
        from inference import build_predictor

        if backbone.startswith(MODEL_PREFIX):  # a project's trained model (DynaMITe, EXITS)
            return self._trained_predictor(method, int(backbone[len(MODEL_PREFIX):]))

        with self._lock:
            shared = self._backbones.get((method, backbone))
            if shared is None:
                predictor = build_predictor(method, backbone=backbone, device=self.device)
                self._backbones[(method, backbone)] = getattr(predictor, "backbone", False)
                return predictor
        if shared is False:  # a method without a backbone (the GrabCut baseline)
            return build_predictor(method, device=self.device)
        return build_predictor(method, backbone=shared, device=self.device)


    def _trained_predictor(self, method: str, model_id: int):
        """A predictor around the network of ready model ``model_id`` (loaded once, shared)."""
        kind, net = self._trained.get(model_id)
        if kind != method:
            raise LookupError(f"model {model_id} is a {kind} model, not {method}")
        if method == "dynamite":
            from inference.methods.dynamite.predictor import DynamitePredictor

            return DynamitePredictor(net, device=self.device)
        from inference.methods.exits import ExitsPredictor

        generator, config = net
        return ExitsPredictor(generator, crop_size=int(config.get("crop_size", 128)),
                              mask_threshold=float(config.get("mask_threshold", 0.5)), device=self.device)


_state: dict[str, Any] = {}


def cache() -> ImageStateCache:
    if "cache" not in _state:
        from django.conf import settings

        _state["cache"] = ImageStateCache(settings.MASKWRIGHT["INTERACTIVE_CACHE_BYTES"])
    return _state["cache"]


def models() -> Models:
    if "models" not in _state:
        from django.conf import settings

        _state["models"] = Models(settings.MASKWRIGHT["INTERACTIVE_DEVICE"])
    return _state["models"]


def image_state(image_id: int, method: str, backbone: str) -> tuple[Entry, bool]:
    """The cached predictor of the image (built on a miss); ``(entry, was_cached)``."""
    from django.conf import settings
    from PIL import Image as PILImage

    key = (image_id, method, backbone)
    entry = cache().get(key)
    if entry is not None:
        return entry, True
    from annotation.datasets.models import Image
    from annotation.datasets.storage import read_rgb

    rgb = read_rgb(Image.objects.values_list("file", flat=True).get(pk=image_id))
    height, width = rgb.shape[:2]
    max_side = settings.MASKWRIGHT["INTERACTIVE_MAX_SIDE"]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:  # methods work at a bounded size; masks are scaled back to the image
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.BILINEAR))
    predictor = models().new_predictor(method, backbone)
    predictor.set_image(rgb)
    entry = Entry(predictor, scale, _nbytes(predictor, set()))
    cache().put(key, entry)
    return entry, False


def warm_up() -> None:
    """Load the first method's model and run it once on a small image, so that the first real
    click pays neither the weights nor the first-call costs of torch and numba."""
    from django.conf import settings

    from inference import Click

    first = settings.MASKWRIGHT["INTERACTIVE_METHODS"][0]
    started = time.perf_counter()
    predictor = models().new_predictor(first["name"], first["backbones"][0])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, size=(96, 128, 3), dtype=np.uint8)
    image[30:70, 40:90] += 150
    predictor.set_image(image)
    predictor.predict([Click(x=64.0, y=48.0, positive=True)])
    import torch

    log.info("warmed up %s in %.2f s (torch threads %d)", first["name"], time.perf_counter() - started,
             torch.get_num_threads())


# -- liveness ----------------------------------------------------------------------------------
def start_heartbeat(hostname: str) -> threading.Event:
    """Refresh ``mw:iworker:<hostname>`` every second (3 s expiry) until the event is set.
    The thread touches no torch (see ``annotation.labeling.tasks.warm_up``)."""
    from .dispatch import ALIVE_PREFIX, redis_client

    stop = threading.Event()
    key = f"{ALIVE_PREFIX}{hostname}"

    def beat() -> None:
        while not stop.is_set():
            try:
                redis_client().set(key, str(time.time()), ex=ALIVE_TTL_S)
            except Exception:  # Redis restarting: try again next second
                log.warning("heartbeat to Redis failed", exc_info=True)
            stop.wait(HEARTBEAT_S)
        try:
            redis_client().delete(key)
        except Exception:
            pass

    threading.Thread(target=beat, name="maskwright-heartbeat", daemon=True).start()
    _state["heartbeat"] = stop
    _state["hostname"] = hostname
    return stop


def hostname() -> str:
    return _state.get("hostname", "")
