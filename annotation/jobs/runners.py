"""Job kinds of the jobs app and of `annotation.segmentation` (export registers from its own app).

:func:`~.engine.register_runner` wraps every runner in :func:`~.params.in_project`: the ids in a
job's parameters must be rows of the job's project before any work starts."""
from __future__ import annotations

from typing import Any

from PIL import Image as PILImage

from annotation.datasets import storage
from annotation.datasets.ingest import thumbnail_bytes
from annotation.datasets.models import Image

from .engine import JobContext, register_runner

CHUNK = 50


@register_runner("verify")
def verify_dataset(ctx: JobContext) -> dict[str, Any]:
    """Check every stored image of a dataset: file present, decodes, size as recorded.

    Missing thumbnails are rebuilt. Problems are listed in the result (the first 200).
    """
    images = Image.objects.filter(dataset_id=ctx.dataset_id).order_by("id")
    total = images.count()
    last_id = int(ctx.cursor.get("last_id", 0))
    done = int(ctx.cursor.get("done", 0))
    problems: list[dict[str, Any]] = list(ctx.cursor.get("problems", []))
    rebuilt = int(ctx.cursor.get("thumbnails_rebuilt", 0))
    while True:
        chunk = list(images.filter(id__gt=last_id)[:CHUNK])
        if not chunk:
            break
        for image in chunk:
            try:
                with PILImage.open(storage.media_path(image.file)) as img:
                    img.load()
                    if img.size != (image.width, image.height):
                        problems.append({"image_id": image.id, "problem": f"size {img.size} != recorded"})
                    thumb = storage.media_path(image.thumbnail)
                    if not thumb.exists():
                        thumb.parent.mkdir(parents=True, exist_ok=True)
                        thumb.write_bytes(thumbnail_bytes(img))
                        rebuilt += 1
            except (OSError, ValueError, SyntaxError) as exc:
                problems.append({"image_id": image.id, "problem": str(exc)[:300]})
            last_id = image.id
            done += 1
        problems = problems[:200]
        ctx.save_progress(done, total, {"last_id": last_id, "done": done, "problems": problems,
                                        "thumbnails_rebuilt": rebuilt})
    return {"checked": done, "problems": problems, "thumbnails_rebuilt": rebuilt}


def _mis_validate(params: dict[str, Any], dataset: Any) -> Any:
    from annotation.segmentation.jobs import mis_validate  # torch-free at import

    return mis_validate(params, dataset)


@register_runner("mis", queue="batch", validate=_mis_validate)
def mis_proposals(ctx: JobContext) -> dict[str, Any]:
    """MIS proposals as pseudo labels; the work (and torch) lives in ``annotation.segmentation``."""
    from annotation.segmentation.jobs import mis_run

    return mis_run(ctx)


@register_runner("model_import", queue="batch")
def model_import(ctx: JobContext) -> dict[str, Any]:
    """Check an uploaded checkpoint strictly and keep it as safetensors (``annotation.modelstore``)."""
    from annotation.segmentation.model_files import import_run

    return import_run(ctx)


def _exits_validate(params: dict[str, Any], dataset: Any) -> Any:
    from annotation.segmentation.exits_job import exits_validate  # torch-free at import

    return exits_validate(params, dataset)


@register_runner("exits", queue="batch", validate=_exits_validate)
def exits_pseudo_masks(ctx: JobContext) -> dict[str, Any]:
    """EXITS pseudo masks from extreme points or boxes (``annotation.segmentation.exits_job``)."""
    from annotation.segmentation.exits_job import exits_run

    return exits_run(ctx)


def _train_validate(params: dict[str, Any], dataset: Any) -> Any:
    from annotation.segmentation.train_job import train_validate  # torch-free at import

    return train_validate(params, dataset)


@register_runner("train", queue="batch", validate=_train_validate)
def train_dynamite(ctx: JobContext) -> dict[str, Any]:
    """DynaMITe trained on the dataset's masks (``annotation.segmentation.train_job``)."""
    from annotation.segmentation.train_job import train_run

    return train_run(ctx)
