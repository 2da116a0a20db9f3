"""The ``mis`` job: MIS proposals of every image of a dataset, stored as pseudo labels.

Each image gets a merge tree (``inference.methods.mis``); its proposals (the tree cut at several
granularities plus samples of the top-down sampler) become pseudo labels: ``Instance`` rows
with ``source`` = :data:`METHOD`, ``pseudo`` set, review state pending, ``score`` = the node's
persistence, ``model_name`` = the backbone and ``model_version`` = ``job-<id>``. One image is
one chunk: its instances are written in one transaction, then the progress is saved (which also
honours a cancel). A redelivered task resumes after the cursor, and an image that already holds
this job's proposals is skipped, so a worker that died between the two writes duplicates nothing.
An image that fails is listed in the result with its error; the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from annotation.common import rle
from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset, Image
from annotation.datasets.storage import read_rgb
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import optional_int, parse_params
from annotation.labeling.models import Instance
from annotation.labeling.services import instance_create
from annotation.projects.models import LabelClass

log = logging.getLogger(__name__)

METHOD = "mis"  # the registered method (and job kind) whose proposals this job stores
MAX_ERRORS = 200  # failed images listed in the result


@dataclass(frozen=True)
class MisParams:
    """What a launcher may set. ``min_fraction``: smallest proposal, as a fraction of the
    image's patches; ``score_threshold``: proposals with a lower persistence are dropped;
    ``max_per_image``: the best-scoring proposals kept per image; ``draws``: samples of the
    top-down sampler; ``skip_existing``: leave out images that already hold MIS proposals of
    this backbone (from an earlier job); ``label_id``: a label of the project given to every
    proposal (none by default: proposals are class-agnostic, and exports skip unlabelled masks)."""

    backbone: str = "effnet-lite0"
    min_fraction: float = 0.01
    score_threshold: float = 0.0
    max_per_image: int = 20
    draws: int = 50
    skip_existing: bool = True
    label_id: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> MisParams:
        params = parse_params(
            cls,
            raw,
            "MIS",
            {
                "backbone": lambda v: str(v).strip(),
                "min_fraction": float,
                "score_threshold": float,
                "max_per_image": int,
                "draws": int,
                "skip_existing": bool,
                "label_id": optional_int,
            },
        )
        if not params.backbone:
            raise ApplicationError("backbone must be named")
        if not 0.0 <= params.min_fraction < 1.0:
            raise ApplicationError("min_fraction must be in [0, 1)")
        if not 0.0 <= params.score_threshold <= 1.0:
            raise ApplicationError("score_threshold must be in [0, 1]")
        if not 1 <= params.max_per_image <= 1000:
            raise ApplicationError("max_per_image must be between 1 and 1000")
        if not 0 <= params.draws <= 1000:
            raise ApplicationError("draws must be between 0 and 1000")
        return params


def batch_device() -> str:
    """Where batch jobs run their models: MASKWRIGHT BATCH_DEVICE, else CUDA when present."""
    configured = settings.MASKWRIGHT.get("BATCH_DEVICE")
    if configured:
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_backbone(name: str, device: str):
    from inference.backbones import build_backbone, list_backbones

    if name not in list_backbones():
        known = sorted(list_backbones())
        raise ApplicationError(f"unknown backbone {name!r} (this worker has {known})")
    return build_backbone(name, device=device)


def image_proposals(
    model: Any, rgb: np.ndarray, params: MisParams, seed: int
) -> list[tuple[np.ndarray, float]]:
    """(H×W bool mask, persistence score) of an image's proposals, best first."""
    import torch

    from inference.methods.mis.batch import node_mask, proposal_nodes
    from inference.methods.mis.predictor import build_tree

    with torch.inference_mode():
        features = model.features(rgb)
    tree = build_tree(features)
    height, width = rgb.shape[:2]
    scored = []
    for node in proposal_nodes(tree, draws=params.draws, seed=seed):
        if tree.sizes[node] < params.min_fraction * tree.n_leaves:
            continue
        score = tree.persistence(node)
        if score >= params.score_threshold:
            scored.append((score, node))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    out = []
    for score, node in scored:
        mask = node_mask(tree, node, (height, width))
        if mask.any():
            out.append((mask, round(float(score), 4)))
        if len(out) >= params.max_per_image:
            break
    return out


def mis_validate(raw: dict[str, Any], dataset: Dataset) -> MisParams:
    """The launch-time check (no torch): the parameters, that the backbone is one this server
    runs (``MASKWRIGHT["MIS_BACKBONES"]``), and that the label is the project's.
    Raises :class:`ApplicationError` naming the problem."""
    params = MisParams.parse(raw)
    backbones = settings.MASKWRIGHT["MIS_BACKBONES"]
    if params.backbone not in backbones:
        raise ApplicationError(
            f"unknown backbone {params.backbone!r}: this server runs {', '.join(backbones)}"
        )
    if (
        params.label_id is not None
        and not LabelClass.objects.filter(
            pk=params.label_id, project_id=dataset.project_id
        ).exists()
    ):
        raise ApplicationError(f"label {params.label_id} is not a label of this project")
    return params


@register_runner(METHOD, queue="batch", validate=mis_validate)
def mis_run(ctx: JobContext) -> dict[str, Any]:
    """Runner of the ``mis`` job kind: MIS proposals as pseudo labels."""
    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    params = mis_validate(ctx.params, dataset)  # again: a job may be resumed after a change
    tag = f"job-{ctx.job_id}"
    images = Image.objects.filter(dataset_id=ctx.dataset_id).order_by("id")
    total = images.count()
    cursor = ctx.cursor
    last_id = int(cursor.get("last_id", 0))
    done = int(cursor.get("done", 0))
    created = int(cursor.get("created", 0))
    skipped = int(cursor.get("skipped", 0))
    failed = int(cursor.get("failed", 0))
    errors: list[dict[str, Any]] = list(cursor.get("errors", []))
    todo = images.filter(id__gt=last_id)
    model = _build_backbone(params.backbone, batch_device()) if todo.exists() else None
    for image in todo.iterator(chunk_size=100):
        proposals_of = Instance.objects.filter(image=image, source=METHOD, pseudo=True)
        mine = proposals_of.filter(model_version=tag)
        earlier = proposals_of.filter(model_name=params.backbone)
        if mine.exists() or (params.skip_existing and earlier.exists()):
            skipped += 1
        else:
            try:
                proposals = image_proposals(model, read_rgb(image.file), params, seed=image.id)
                with transaction.atomic():
                    for mask, score in proposals:
                        instance_create(
                            image=image,
                            mask=rle.encode(mask),
                            source=METHOD,
                            pseudo=True,
                            label_id=params.label_id,
                            model_name=params.backbone,
                            model_version=tag,
                            score=score,
                        )
                created += len(proposals)
            except Exception as exc:  # noqa: BLE001 (one bad image must not end the job)
                log.warning("%s job %s: image %s failed: %s", METHOD, ctx.job_id, image.id, exc)
                failed += 1
                if len(errors) < MAX_ERRORS:
                    errors.append(
                        {
                            "image_id": image.id,
                            "name": image.original_name,
                            "error": f"{type(exc).__name__}: {exc}"[:300],
                        }
                    )
        last_id = image.id
        done += 1
        ctx.save_progress(
            done,
            total,
            {
                "last_id": last_id,
                "done": done,
                "created": created,
                "skipped": skipped,
                "failed": failed,
                "errors": errors,
            },
        )
    if total == 0:
        ctx.save_progress(0, 0, {"last_id": 0, "done": 0})
    return {
        "images": total,
        "instances": created,
        "skipped": skipped,
        "failed": failed,
        "errors": errors,
        "backbone": params.backbone,
    }
