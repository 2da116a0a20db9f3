"""A project's trained EXITS generator as an interactive method: import an upload, serve it.

Only ``generator.safetensors`` files (what an EXITS run writes) are accepted: the generator's
encoder and crop size live in its metadata. Generators are loaded once per (file, device) and
shared by every image's predictor.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .generator import PseudoLabelGenerator, load_generator, save_generator
from .predictor import ExitsPredictor

_GENERATORS: dict[tuple[str, int, str], tuple[PseudoLabelGenerator, dict[str, Any]]] = {}
_LOCK = threading.Lock()


def convert_trained(source: Path, target: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Load the generator at ``source`` strictly and write it again at ``target``; its config
    (encoder, crop size, mask threshold) as stored in the file. ``config`` is not needed."""
    del config
    if Path(source).suffix != ".safetensors":
        raise ValueError(
            "an EXITS generator is uploaded as the generator.safetensors an EXITS run wrote"
        )
    generator, stored = load_generator(source, device="cpu")
    save_generator(generator, target, **{k: v for k, v in stored.items() if k != "encoder"})
    return stored


def load_trained(path: Path, config: dict[str, Any], device: str) -> ExitsPredictor:
    """A predictor around the generator file ``path``; crop size and threshold from the file's
    config (``config`` fills what it lacks), defaults 128 px and 0.5."""
    key = (str(Path(path).resolve()), Path(path).stat().st_mtime_ns, device)
    with _LOCK:
        loaded = _GENERATORS.get(key)
        if loaded is None:
            loaded = _GENERATORS[key] = load_generator(path, device=device)
    generator, stored = loaded
    settings = {**(config or {}), **stored}
    return ExitsPredictor(
        generator,
        crop_size=int(settings.get("crop_size", 128)),
        mask_threshold=float(settings.get("mask_threshold", 0.5)),
        device=device,
    )
