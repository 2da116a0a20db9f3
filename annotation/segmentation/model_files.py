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
    """Load ``source`` strictly and write it as safetensors next to it; (new path, config).
    How is the method's own business: its registered ``TrainedWeights.convert``."""
    from .methods import registry

    registered = registry()
    found = registered.method_info(model.method)
    if found.trained is None:
        raise ValueError(f"{found.label} takes no trained model file")
    if found.trained.suffixes and source.suffix not in found.trained.suffixes:
        raise ValueError(f"{found.label} needs {found.trained.description}")
    target = source.with_name(f"{model.sha256}.converted.safetensors")
    config = registered.convert_trained(model.method, source, target, dict(model.config or {}))
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
    """Ready models' files, looked up once per worker. The method's ``load_trained`` keeps the
    network loaded once and shares it; each image gets its own predictor around it."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._files: dict[int, tuple[str, str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def new_predictor(self, model_id: int, method: str) -> Any:
        """A fresh predictor (its own image state) around the network of ready model
        ``model_id``; LookupError if the model is not usable or is not a ``method`` model."""
        with self._lock:
            if model_id not in self._files:
                row = model_file(model_id)
                if row is None:
                    raise LookupError(f"model {model_id} is not a ready model")
                self._files[model_id] = row
            kind, relative, config = self._files[model_id]
        if kind != method:
            raise LookupError(f"model {model_id} is a {kind} model, not {method}")
        from .methods import registry

        return registry().load_trained(kind, storage.media_path(relative), dict(config or {}), self.device)
