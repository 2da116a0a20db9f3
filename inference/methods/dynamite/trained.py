"""A project's trained DynaMITe as an interactive method: import an upload, serve it.

``convert_trained`` is the import step (strict load, safetensors out); ``load_trained`` builds a
predictor around the converted file. Networks are loaded once per (file, device) and shared by
every image's predictor, as a worker serves many images with one model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ...weights import load_once
from .checkpoint import load_model, save_model
from .model import DynamiteConfig
from .predictor import DynamitePredictor


def convert_trained(source: Path, target: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Load ``source`` (safetensors, or an official pickle of plain tensors) strictly and write it
    as safetensors at ``target``; the architecture's config as a dict.

    ``config["backbone"]``, when given, names the architecture (else the file's stored config or
    a guess from its keys, see :func:`~.checkpoint.load_model`).
    """
    backbone = (config or {}).get("backbone")
    architecture = (
        DynamiteConfig(backbone=backbone, pretrained_backbone=False) if backbone else None
    )
    net = load_model(source, config=architecture, device="cpu")
    save_model(net, target, net.config)
    return dataclasses.asdict(net.config)


def load_trained(path: Path, config: dict[str, Any], device: str) -> DynamitePredictor:
    """A predictor around the converted file ``path`` (its architecture is stored in it, so
    ``config`` is not needed)."""
    del config
    net = load_once(path, device, lambda file, on: load_model(file, device=on).eval())
    return DynamitePredictor(net, device=device)
