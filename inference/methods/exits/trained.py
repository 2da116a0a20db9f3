"""A project's trained EXITS generator as an interactive method: import an upload, serve it.

Only ``generator.safetensors`` files (what an EXITS run writes) are accepted: the generator's
encoder and crop size live in its metadata. Generators are loaded once per (file, device) and
shared by every image's predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...weights import load_once
from .generator import load_generator, save_generator
from .predictor import ExitsPredictor


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
    generator, stored = load_once(path, device, lambda file, on: load_generator(file, device=on))
    settings = {**(config or {}), **stored}
    return ExitsPredictor(
        generator,
        crop_size=int(settings.get("crop_size", 128)),
        mask_threshold=float(settings.get("mask_threshold", 0.5)),
        device=device,
    )
