"""Writes for trained models: upload (then a batch worker imports the file), register a model
trained here, make one the project's default, delete.

The web process never opens a checkpoint (that needs torch, and a pickle must not be unpickled
next to the database credentials): an upload is only streamed to the media store, hashed and
handed to a ``model_import`` job, which loads it strictly on a batch worker and rewrites it as
safetensors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.common import media
from annotation.common.exceptions import ApplicationError, Conflict
from annotation.common.realtime import broadcast_on_commit, project_group
from annotation.datasets import storage
from annotation.jobs.models import Job
from annotation.jobs.services import job_launch
from annotation.segmentation.interactive import methods

from .models import TrainedModel

_CHUNK = 1 << 20


def model_relpath(project_id: int, sha256: str, suffix: str) -> str:
    return f"models/{project_id}/{sha256[:2]}/{sha256}{suffix}"


def push_model(model: TrainedModel) -> None:
    broadcast_on_commit(
        project_group(model.project_id),
        "model.changed",
        {
            "model_id": model.id,
            "method": model.method,
            "state": model.state,
            "is_default": model.is_default,
        },
    )


def _store(upload: Any, project_id: int, suffix: str) -> tuple[str, str, int]:
    """Stream ``upload`` (a Django UploadedFile or any binary file) to the media store; returns
    (relative path, sha256, bytes). Refuses above MAX_MODEL_BYTES while reading."""
    limit = settings.MASKWRIGHT["MAX_MODEL_BYTES"]
    fd, scratch = storage.scratch_file()
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            chunks = (
                upload.chunks(_CHUNK)
                if hasattr(upload, "chunks")
                else iter(lambda: upload.read(_CHUNK), b"")
            )
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ApplicationError(
                        f"model file is larger than the limit of {limit // 2**20} MiB"
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ApplicationError("model file is empty")
        sha = digest.hexdigest()
        relative = model_relpath(project_id, sha, suffix)
        storage.move_into_place(scratch, relative)
        return relative, sha, size
    finally:
        scratch.unlink(missing_ok=True)


def model_upload(
    *,
    project_id: int,
    method: str,
    name: str,
    upload: Any,
    filename: str,
    backbone: str | None,
    user: Any,
) -> TrainedModel:
    """Store an uploaded checkpoint and launch its import; the row is ``importing`` until then.
    What the file may be (method, suffix, named architecture) is what the method declared when
    it registered (its ``TrainedWeights``)."""
    trained = methods.trained_info(method)
    if trained is None:
        names = ", ".join(m["name"] for m in methods.catalog() if m["needs_trained_model"])
        raise ApplicationError(
            f"method must be one that takes a model file ({names}), got {method!r}"
        )
    suffix = Path(filename or "").suffix.lower()
    if suffix not in trained.suffixes:
        raise ApplicationError(
            f"{trained.description}: a file ending in {', '.join(trained.suffixes)}; "
            f"got {filename!r}"
        )
    if backbone and backbone not in trained.backbones:
        choices = ", ".join(trained.backbones) or "none to choose"
        raise ApplicationError(f"{method} backbone must be one of {choices}, got {backbone!r}")
    name = (name or Path(filename).stem).strip()[:200]
    relative, sha, size = _store(upload, project_id, suffix)
    try:
        with transaction.atomic():
            model = TrainedModel.objects.create(
                project_id=project_id,
                method=method,
                name=name,
                file=relative,
                original_name=Path(filename).name[:500],
                size_bytes=size,
                sha256=sha,
                config={"backbone": backbone} if backbone else {},
                origin=TrainedModel.Origin.UPLOADED,
                created_by=user,
            )
            job = job_launch(
                dataset=None,
                project_id=project_id,
                kind="model_import",
                params={"model_id": model.id},
                user=user,
            )
            model.job = job
            model.save(update_fields=["job", "updated_at"])
            push_model(model)
    except Exception:
        if not TrainedModel.objects.filter(file=relative).exists():
            storage.remove_quietly(relative)
        raise
    return model


def model_import_finished(
    *, model_id: int, file: str | None, config: dict[str, Any], error: str = ""
) -> TrainedModel:
    """Record the outcome of an import: the converted file and its config, or the error."""
    with transaction.atomic():
        model = TrainedModel.objects.select_for_update().get(pk=model_id)
        old = model.file
        if error:
            model.state, model.error = TrainedModel.State.FAILED, error[:2000]
        else:
            model.state, model.error, model.config = TrainedModel.State.READY, "", config
            if file and file != old:
                model.file = file
                model.size_bytes = media.size(file)
                transaction.on_commit(lambda: _remove_unused(old))
        model.save()
        push_model(model)
    return model


def _remove_unused(relative: str) -> None:
    if not TrainedModel.objects.filter(file=relative).exists():
        storage.remove_quietly(relative)


def model_register_trained(
    *,
    project_id: int,
    method: str,
    name: str,
    source: Path,
    config: dict[str, Any],
    metrics: dict[str, Any],
    job_id: int | None,
    user: Any = None,
) -> TrainedModel:
    """Copy a model file written by a job into the store as a ready model. A job registers
    one model: a redelivered job gets the one it stored before (``user`` defaults to the
    job's launcher)."""
    if job_id is not None:
        existing = TrainedModel.objects.filter(job_id=job_id).first()
        if existing is not None:
            return existing
        user = user or Job.objects.filter(pk=job_id).values_list("launched_by", flat=True).first()
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    relative = model_relpath(project_id, sha, source.suffix or ".safetensors")
    size = source.stat().st_size
    media.put_file(source, relative, move=False)  # copy: a resumed job may still read its own
    with transaction.atomic():
        model = TrainedModel.objects.create(
            project_id=project_id,
            method=method,
            name=name[:200],
            file=relative,
            original_name=source.name,
            size_bytes=size,
            sha256=sha,
            config=config,
            metrics=metrics,
            state=TrainedModel.State.READY,
            origin=TrainedModel.Origin.TRAINED,
            job_id=job_id,
            created_by_id=getattr(user, "pk", user),
        )
        push_model(model)
    return model


def model_set_default(*, model: TrainedModel) -> TrainedModel:
    """Make ``model`` the one its project's annotation page offers for its method."""
    with transaction.atomic():
        model = TrainedModel.objects.select_for_update().get(pk=model.pk)
        if model.state != TrainedModel.State.READY:
            raise Conflict(
                f"model {model.pk} is {model.state}; only a ready model can be the default"
            )
        TrainedModel.objects.filter(
            project_id=model.project_id, method=model.method, is_default=True
        ).exclude(pk=model.pk).update(is_default=False)
        model.is_default = True
        model.save(update_fields=["is_default", "updated_at"])
        push_model(model)
    return model


def model_delete(*, model: TrainedModel) -> None:
    if model.state == TrainedModel.State.IMPORTING:
        raise Conflict(f"model {model.pk} is still being imported")
    relative = model.file
    with transaction.atomic():
        model.delete()
        broadcast_on_commit(
            project_group(model.project_id),
            "model.changed",
            {"model_id": None, "method": model.method, "state": "deleted"},
        )
        transaction.on_commit(lambda: _remove_unused(relative))
