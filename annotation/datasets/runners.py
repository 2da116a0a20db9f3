"""The datasets app's part in jobs: the ``verify`` kind, and the ids of datasets and images a
job's parameters may name (registered by :class:`.apps.DatasetsConfig`).

:func:`~annotation.jobs.engine.register_runner` wraps every runner in
:func:`~annotation.jobs.params.in_project`: the ids in a job's parameters must be rows of the
job's project before any work starts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from PIL import Image as PILImage

from annotation.common import media
from annotation.common.media_cache import ChecksumMismatch
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import project_rows, register_id_param

from .ingest import thumbnail_bytes
from .models import Dataset, Image

CHUNK = 50

register_id_param("dataset", project_rows(Dataset))
register_id_param("image", project_rows(Image, "dataset__project_id"))


@register_runner("verify")
def verify_dataset(ctx: JobContext) -> dict[str, Any]:
    """Check every stored image of a dataset: file present (in the media store), decodes,
    size as recorded, bytes as the recorded checksum (remote store).

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
                with (
                    media.local_file(
                        image.file,
                        sha256=image.file_sha256 or None,
                        max_bytes=settings.MASKWRIGHT["MAX_IMAGE_BYTES"],
                    ) as path,
                    PILImage.open(path) as img,
                ):
                    img.load()
                    if img.size != (image.width, image.height):
                        problems.append(
                            {"image_id": image.id, "problem": f"size {img.size} != recorded"}
                        )
                    if not media.exists(image.thumbnail):
                        media.put_bytes(thumbnail_bytes(img), image.thumbnail)
                        rebuilt += 1
            except ChecksumMismatch as exc:
                problems.append({"image_id": image.id, "problem": exc.message[:300]})
            except (OSError, ValueError, SyntaxError) as exc:
                problems.append({"image_id": image.id, "problem": str(exc)[:300]})
            last_id = image.id
            done += 1
        problems = problems[:200]
        ctx.save_progress(
            done,
            total,
            {"last_id": last_id, "done": done, "problems": problems, "thumbnails_rebuilt": rebuilt},
        )
    return {"checked": done, "problems": problems, "thumbnails_rebuilt": rebuilt}
