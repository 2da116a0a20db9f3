"""Importing an uploaded model file (the ``model_import`` job, on a batch worker).

Imported only inside a worker (torch through ``inference``). An uploaded checkpoint is loaded
strictly (every key and shape must match the network the config names) and written again as
safetensors, so that workers never unpickle it again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.datasets import storage
from annotation.jobs.engine import JobContext
from annotation.modelstore.files import local_model_file
from annotation.modelstore.models import TrainedModel
from annotation.modelstore.services import model_import_finished, model_relpath

log = logging.getLogger(__name__)


def _convert(model: TrainedModel, source: Path) -> tuple[Path, dict[str, Any]]:
    """Load ``source`` strictly and write it as safetensors in scratch; (new path, config).
    How is the method's own business: its registered ``TrainedWeights.convert``."""
    from ..interactive.methods import registry

    registered = registry()
    found = registered.method_info(model.method)
    if found.trained is None:
        raise ValueError(f"{found.label} takes no trained model file")
    if found.trained.suffixes and source.suffix not in found.trained.suffixes:
        raise ValueError(f"{found.label} needs {found.trained.description}")
    # written on this machine's scratch folder (not beside the source: that may be a cache
    # entry), then stored
    scratch = Path(settings.MEDIA_ROOT) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / f"{model.sha256}.{os.getpid()}.converted.safetensors"
    config = registered.convert_trained(model.method, source, target, dict(model.config or {}))
    return target, config


def import_run(ctx: JobContext) -> dict[str, Any]:
    """Runner of ``model_import``: one unit of work, the file."""
    model = TrainedModel.objects.get(pk=int(ctx.params["model_id"]))
    ctx.save_progress(0, 1, {})
    try:
        with local_model_file(model.file) as source:
            target, config = _convert(model, source)
    except Exception as exc:
        log.warning("model %s import failed: %s", model.id, exc)
        model_import_finished(
            model_id=model.id, file=None, config={}, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    relative = model_relpath(model.project_id, model.sha256, ".safetensors")
    try:
        storage.move_into_place(target, relative)
    finally:
        target.unlink(missing_ok=True)
    model_import_finished(model_id=model.id, file=relative, config=config)
    ctx.save_progress(1, 1, {})
    return {"model_id": model.id, "file": relative, "config": config}
