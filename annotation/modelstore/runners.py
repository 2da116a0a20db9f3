"""The model store's part in jobs: the ``model_import`` kind, and the ids of models a job's
parameters may name (registered by :class:`.apps.ModelStoreConfig`).

A model import is started by the model upload (:func:`.services.model_upload`), never by a
launcher of the jobs API: it rewrites a model row, which a job of a dataset has no business
naming. It runs on a batch worker, where ``annotation.segmentation`` loads the file (torch)."""

from __future__ import annotations

from typing import Any

from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import project_rows, register_id_param

from .models import TrainedModel

register_id_param("model", project_rows(TrainedModel))


@register_runner("model_import", queue="batch", launchable=False)
def model_import(ctx: JobContext) -> dict[str, Any]:
    """Check an uploaded checkpoint strictly and keep it as safetensors."""
    # a batch worker's module (it loads torch when it runs): imported here, never in the web
    from annotation.segmentation.batch.model_import import import_run

    return import_run(ctx)
