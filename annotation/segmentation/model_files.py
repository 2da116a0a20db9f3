"""Model files on the batch and interactive workers: import an upload, load a ready model.

Imported only inside a worker (torch through ``inference``). An uploaded checkpoint is loaded
strictly (every key and shape must match the network the config names) and written again as
safetensors, so that workers never unpickle it again.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from annotation.datasets import storage
from annotation.jobs.engine import JobContext
from annotation.modelstore.models import TrainedModel
from annotation.modelstore.selectors import model_file
from annotation.modelstore.services import model_import_finished, model_relpath

log = logging.getLogger(__name__)


def _convert(model: TrainedModel, source: Path) -> tuple[Path, dict[str, Any]]:
    """Load ``source`` strictly and write it as safetensors next to it; (new path, config)."""
    if model.method == TrainedModel.Method.DYNAMITE:
        from inference.methods.dynamite.checkpoint import load_model, save_model
        from inference.methods.dynamite.model import DynamiteConfig

        backbone = (model.config or {}).get("backbone")
        config = DynamiteConfig(backbone=backbone, pretrained_backbone=False) if backbone else None
        net = load_model(source, config=config, device="cpu")
        target = source.with_name(f"{model.sha256}.converted.safetensors")
        save_model(net, target, net.config)
        from dataclasses import asdict

        return target, asdict(net.config)
    from inference.methods.exits import load_generator, save_generator

    if source.suffix != ".safetensors":
        raise ValueError("an EXITS generator is uploaded as the generator.safetensors an EXITS run wrote")
    generator, config = load_generator(source, device="cpu")
    target = source.with_name(f"{model.sha256}.converted.safetensors")
    save_generator(generator, target, **{k: v for k, v in config.items() if k != "encoder"})
    return target, config


def import_run(ctx: JobContext) -> dict[str, Any]:
    """Runner of ``model_import``: one unit of work, the file."""
    model = TrainedModel.objects.get(pk=int(ctx.params["model_id"]))
    ctx.save_progress(0, 1, {})
    source = storage.media_path(model.file)
    try:
        target, config = _convert(model, source)
    except Exception as exc:  # noqa: BLE001 (any load failure is the file's problem: say why)
        log.warning("model %s import failed: %s", model.id, exc)
        model_import_finished(model_id=model.id, file=None, config={},
                              error=f"{type(exc).__name__}: {exc}")
        raise
    relative = model_relpath(model.project_id, model.sha256, ".safetensors")
    storage.move_into_place(target, relative)
    model_import_finished(model_id=model.id, file=relative, config=config)
    ctx.save_progress(1, 1, {})
    return {"model_id": model.id, "file": relative, "config": config}


class LoadedModels:
    """Networks of ready models, loaded once per worker and shared by every image's predictor."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._nets: dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, model_id: int) -> tuple[str, Any]:
        """(method, network) of a ready model; raises LookupError if it is not usable."""
        with self._lock:
            if model_id in self._nets:
                return self._nets[model_id]
            row = model_file(model_id)
            if row is None:
                raise LookupError(f"model {model_id} is not a ready model")
            method, relative, _config = row
            path = storage.media_path(relative)
            if method == TrainedModel.Method.DYNAMITE:
                from inference.methods.dynamite.checkpoint import load_model

                net = load_model(path, device=self.device).eval()
            else:
                from inference.methods.exits import load_generator

                net = load_generator(path, device=self.device)  # (generator, its config)
            self._nets[model_id] = (method, net)
            return method, net
