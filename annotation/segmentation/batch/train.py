"""Training jobs: a model of a method trained on a dataset's own masks, then evaluated.

One kind per method that declares a ``train`` batch job (``inference.jobs``). The masks a
launcher chooses (accepted human work, the pseudo labels of one registered method, or all that
were not rejected) are written once as COCO json into the job's work folder; a few images are
held back. The method's entry trains (a redelivered task resumes from its newest checkpoint),
reporting its steps as job progress. The held-back images are then evaluated with the MIST
protocol (``inference.evaluation.evaluate_trained``: random strategy, τ = 10, IoU 0.85) and the
model is stored as a ready model of the project with those figures, once per job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset
from annotation.jobs.engine import JobContext
from annotation.modelstore.models import TrainedModel

from .runs import Kind, batch_device, keep_model, register_kinds, work_dir
from .training_data import instances_for, train_source_description, train_sources, write_mask_coco

log = logging.getLogger(__name__)


def _extra(info: Any) -> tuple[Any, ...]:
    """The platform's parameters of a training job."""
    from inference.jobs import Param

    sources = tuple(train_sources().items())
    return (
        Param(
            "sources",
            "Train on",
            "choice",
            "accepted",
            # accepted first, all last: the methods' pseudo labels between
            choices=(sources[0], *sources[2:], sources[1]),
            help="masks people made or accepted, one method's pseudo labels, or all",
        ),
        Param(
            "init_model_id",
            "Start from",
            "id",
            None,
            refers="model",
            choices=(("", "backbone ImageNet weights"),),
            help=f"a ready {info.label} model of the project to fine-tune",
        ),
        Param(
            "eval_images",
            "Held-back images",
            "int",
            8,
            minimum=0,
            maximum=500,
            help="Evaluated with MIST (NCI, NFO, NFI, mIoU) after training (at most a fifth of"
            " the images)",
        ),
        Param("name", "Name of the model", "text", "", maximum=150),
    )


def _validate(kind: Kind, mine: dict[str, Any], own: dict[str, Any], dataset: Dataset) -> None:
    """Launch-time check (no torch): the starting model, and that there are masks."""
    init = own["init_model_id"]
    if (
        init is not None
        and not TrainedModel.objects.filter(
            pk=init,
            project_id=dataset.project_id,
            method=kind.method,
            state=TrainedModel.State.READY,
        ).exists()
    ):
        raise ApplicationError(
            f"model {init} is not a ready {kind.info.label} model of this project"
        )
    if not instances_for(dataset.id, own["sources"]).exists():
        raise ApplicationError(
            f"no masks to train on in this dataset ({own['sources']}: "
            f"{train_source_description(own['sources'])})"
        )


def split_images(image_ids: list[int], eval_images: int) -> tuple[list[int], list[int]]:
    """(train, held back): the last images by id are held back, at most a fifth of them."""
    ids = sorted(image_ids)
    k = min(eval_images, len(ids) // 5)
    return (ids[:-k], ids[-k:]) if k else (ids, [])


def _prepare(folder: Path, dataset_id: int, own: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Write the training/evaluation json once (a resumed job keeps what it started with)."""
    split_file = folder / "split.json"
    if split_file.exists():
        split = json.loads(split_file.read_text())
        return split["train"], split["eval"]
    written = write_mask_coco(dataset_id, own["sources"], folder / "all.json")
    train_ids, eval_ids = split_images(written["image_ids"], own["eval_images"])
    write_mask_coco(dataset_id, own["sources"], folder / "train.json", image_ids=train_ids)
    if eval_ids:
        write_mask_coco(dataset_id, own["sources"], folder / "eval.json", image_ids=eval_ids)
    split_file.write_text(json.dumps({"train": train_ids, "eval": eval_ids}))
    return train_ids, eval_ids


def _images_dir(folder: Path) -> Path:
    """Where the trainer finds the ``file_name``s of the job's COCO files: MEDIA_ROOT on the
    local store, else the job's own folder filled from the media store."""
    from annotation.datasets.storage import images_folder

    names = [im["file_name"] for im in json.loads((folder / "all.json").read_text())["images"]]
    return images_folder(names, folder / "media")


def _run(ctx: JobContext, kind: Kind) -> dict[str, Any]:
    from inference.evaluation.trained import evaluate_trained

    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    mine, own = kind.parse(ctx.params)
    _validate(kind, mine, own, dataset)
    folder = work_dir(ctx.job_id, kind.job.kind)
    train_ids, eval_ids = _prepare(folder, dataset.id, own)
    if not train_ids:
        raise ApplicationError(
            "no images left to train on after holding back the evaluation images"
        )
    init = None
    if own["init_model_id"] is not None:
        from annotation.common.media import copy_into
        from annotation.modelstore.files import expected_checksum

        start = TrainedModel.objects.get(pk=own["init_model_id"])
        sha, size = expected_checksum(start.file)
        path = copy_into(start.file, folder / "media", sha256=sha, size_bytes=size)
        init = (path, dict(start.config or {}))
    device = batch_device()
    images_dir = _images_dir(folder)
    steps = {"total": 0}

    def progress(done: int, total: int, stage: str, extra: dict[str, Any] | None = None) -> None:
        steps["total"] = total
        ctx.save_progress(done, total + len(eval_ids), {"stage": stage, **(extra or {})})

    trained = kind.job.entry()(
        folder / "train.json", images_dir, folder / "run", mine, init, device, progress
    )
    metrics = {**trained.metrics, "train_images": len(train_ids)}
    total = steps["total"] + len(eval_ids)
    if eval_ids:
        metrics.update(
            evaluate_trained(
                kind.method,
                trained.model_file,
                trained.model_config,
                folder / "eval.json",
                images_dir,
                device,
                lambda i: ctx.save_progress(steps["total"] + i, total, {"stage": "evaluate"}),
            )
        )
    what = trained.description or kind.info.label
    model_id = keep_model(
        ctx,
        kind,
        dataset,
        file=trained.model_file,
        config=trained.model_config,
        metrics=metrics,
        name=own["name"] or f"{what} · {dataset.name} (job {ctx.job_id})",
    )
    ctx.save_progress(total, total, {"stage": "done"})
    return {
        "model_id": model_id,
        "metrics": metrics,
        "backbone": trained.model_config.get("backbone"),
        "resumed_from": trained.resumed_from,
        "train_images": len(train_ids),
        "eval_images": len(eval_ids),
    }


KINDS = register_kinds("train", _run, _validate, _extra)
