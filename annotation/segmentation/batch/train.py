"""The ``train`` job: a DynaMITe model trained on a dataset's own masks, then evaluated.

The masks a launcher chooses (accepted human work, the pseudo labels of one registered method,
or all that were not rejected) are written once as COCO json into the job's work folder; a few
images are held back. ``inference.methods.dynamite.train`` trains (checkpoints every N steps; a
redelivered task resumes from the newest one), reporting each step as job progress. The
held-back images are then evaluated with the MIST protocol (random strategy, τ = 10, IoU 0.85)
and the model is stored as a ready model of the project with those figures, once per job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.common.exceptions import ApplicationError
from annotation.datasets.models import Dataset
from annotation.jobs.engine import JobContext, register_runner
from annotation.jobs.params import optional_int, parse_params
from annotation.modelstore.models import TrainedModel

from .training_data import instances_for, train_source_description, train_sources, write_mask_coco

log = logging.getLogger(__name__)
METHOD = "dynamite"  # the registered method this job trains (its models are stored under it)
BACKBONES = (
    "effnet-lite0",
    "resnet50",
    "swin_tiny",
    "tiny",
)  # tiny: a small random network (tests)


@dataclass(frozen=True)
class TrainParams:
    """What a launcher may set. ``init_model_id``: a ready DynaMITe model of the project to
    start from (its backbone wins); else the backbone starts from ImageNet weights where they
    are available offline. ``eval_images``: images held back for the evaluation (at most a
    fifth of the images). CPU-sized defaults; the paper trains 184k steps of 32 crops of 1024.
    ``steps``: from ImageNet weights held-back objects start to be found after ~400 steps
    (``maskwright bench dynamite-train``: GrabCut mIoU after one click 0.02 → 0.61 in 1000)."""

    sources: str = "accepted"
    backbone: str = "effnet-lite0"
    steps: int = 1000
    batch_size: int = 2
    crop_size: int = 384
    lr: float = 1e-4
    checkpoint_every: int = 50
    init_model_id: int | None = None
    eval_images: int = 8
    name: str = ""

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TrainParams:
        p = parse_params(
            cls,
            raw,
            "training",
            {
                "sources": str,
                "backbone": str,
                "steps": int,
                "batch_size": int,
                "crop_size": int,
                "lr": float,
                "checkpoint_every": int,
                "init_model_id": optional_int,
                "eval_images": int,
                "name": lambda v: str(v).strip()[:150],
            },
        )
        if train_source_description(p.sources) is None:
            raise ApplicationError(
                "sources must be accepted, all, or the name of a method whose pseudo labels to"
                f" train on (one of {sorted(train_sources())})"
            )
        if p.backbone not in BACKBONES:
            raise ApplicationError(f"backbone must be one of {BACKBONES}")
        if not 1 <= p.steps <= 1_000_000 or not 1 <= p.batch_size <= 64:
            raise ApplicationError("steps must be in [1, 1000000] and batch_size in [1, 64]")
        if p.crop_size < 128 or p.crop_size > 1536 or p.crop_size % 32:
            raise ApplicationError("crop_size must be a multiple of 32 between 128 and 1536")
        if (
            not 0 < p.lr < 1
            or not 1 <= p.checkpoint_every <= 100_000
            or not 0 <= p.eval_images <= 500
        ):
            raise ApplicationError(
                "lr must be in (0, 1), checkpoint_every ≥ 1, eval_images in [0, 500]"
            )
        return p


def train_validate(raw: dict[str, Any], dataset: Dataset) -> TrainParams:
    """Launch-time check (no torch): parameters, the starting model, and that there are masks."""
    params = TrainParams.parse(raw)
    if (
        params.init_model_id is not None
        and not TrainedModel.objects.filter(
            pk=params.init_model_id,
            project_id=dataset.project_id,
            method=METHOD,
            state=TrainedModel.State.READY,
        ).exists()
    ):
        raise ApplicationError(
            f"model {params.init_model_id} is not a ready DynaMITe model of this project"
        )
    if not instances_for(dataset.id, params.sources).exists():
        raise ApplicationError(
            f"no masks to train on in this dataset ({params.sources}: "
            f"{train_source_description(params.sources)})"
        )
    return params


def split_images(image_ids: list[int], eval_images: int) -> tuple[list[int], list[int]]:
    """(train, held back): the last images by id are held back, at most a fifth of them."""
    ids = sorted(image_ids)
    k = min(eval_images, len(ids) // 5)
    return (ids[:-k], ids[-k:]) if k else (ids, [])


def _prepare(folder: Path, dataset_id: int, params: TrainParams) -> tuple[list[int], list[int]]:
    """Write the training/evaluation json once (a resumed job keeps what it started with)."""
    split_file = folder / "split.json"
    if split_file.exists():
        split = json.loads(split_file.read_text())
        return split["train"], split["eval"]
    written = write_mask_coco(dataset_id, params.sources, folder / "all.json")
    train_ids, eval_ids = split_images(written["image_ids"], params.eval_images)
    if eval_ids:
        write_mask_coco(dataset_id, params.sources, folder / "eval.json", image_ids=eval_ids)
    split_file.write_text(json.dumps({"train": train_ids, "eval": eval_ids}))
    return train_ids, eval_ids


@register_runner("train", queue="batch", validate=train_validate)
def train_run(ctx: JobContext) -> dict[str, Any]:
    """Runner of the ``train`` job kind: DynaMITe trained on the dataset's masks."""
    from inference.methods.dynamite.model import DynamiteConfig
    from inference.methods.dynamite.train import TrainConfig, train

    from .mis import batch_device

    dataset = Dataset.objects.get(pk=ctx.dataset_id)
    params = train_validate(ctx.params, dataset)
    folder = Path(settings.MEDIA_ROOT) / "jobs" / str(ctx.job_id) / METHOD
    folder.mkdir(parents=True, exist_ok=True)
    train_ids, eval_ids = _prepare(folder, dataset.id, params)
    if not train_ids:
        raise ApplicationError(
            "no images left to train on after holding back the evaluation images"
        )
    init = None
    # Served at the crop size the model was trained at (short and long side bounded by it).
    base = (
        DynamiteConfig.tiny()
        if params.backbone == "tiny"
        else DynamiteConfig(backbone=params.backbone)
    )
    model_config = dataclasses.replace(base, short_side=params.crop_size, max_side=params.crop_size)
    if params.init_model_id is not None:
        from annotation.datasets.storage import media_path

        start = TrainedModel.objects.get(pk=params.init_model_id)
        init = media_path(start.file)
        model_config = (
            DynamiteConfig(**{**start.config, "pretrained_backbone": False})
            if start.config
            else model_config
        )
    device = batch_device()
    config = TrainConfig(
        annotations=folder / "all.json",
        images_dir=settings.MEDIA_ROOT,
        output_dir=folder / "run",
        model=model_config,
        init_checkpoint=init,
        steps=params.steps,
        batch_size=params.batch_size,
        crop_size=params.crop_size,
        lr=params.lr,
        checkpoint_every=params.checkpoint_every,
        device=device,
        image_ids=tuple(train_ids),
    )
    total = params.steps + len(eval_ids)

    def progress(p) -> None:
        ctx.save_progress(
            p.step,
            total,
            {
                "stage": "train",
                "loss": round(p.loss, 4),
                "s_per_step": round(p.seconds_per_step, 3),
                "eta_s": round(p.eta_s),
            },
        )

    result = train(config, progress=progress)
    if result.model_path is None:
        raise RuntimeError("training stopped before its last step")
    metrics = {
        "train_steps": result.step,
        "train_s": round(result.seconds, 1),
        "final_loss": round(result.losses[-1], 4) if result.losses else None,
        "train_images": len(train_ids),
    }
    if eval_ids:
        metrics.update(
            _evaluate(
                ctx,
                Path(result.model_path),
                folder / "eval.json",
                device,
                done=params.steps,
                total=total,
            )
        )
    model_id = _register(ctx, dataset, params, Path(result.model_path), model_config, metrics)
    ctx.save_progress(total, total, {"stage": "done"})
    return {
        "model_id": model_id,
        "metrics": metrics,
        "backbone": model_config.backbone,
        "resumed_from": result.resumed_from,
        "train_images": len(train_ids),
        "eval_images": len(eval_ids),
    }


def _evaluate(
    ctx: JobContext, model_path: Path, eval_json: Path, device: str, *, done: int, total: int
) -> dict[str, Any]:
    """MIST (random strategy, τ = 10, IoU 0.85) on the held-back images."""
    from inference.evaluation import CocoDataset, evaluate_multi_sample, mist_summary
    from inference.evaluation.loop import mist_rng
    from inference.methods.dynamite.checkpoint import load_model
    from inference.methods.dynamite.predictor import DynamitePredictor

    predictor = DynamitePredictor(load_model(model_path, device=device), device=device)
    samples = CocoDataset(eval_json, settings.MEDIA_ROOT, protocol="multi")
    rng = mist_rng(0)
    finals, interactions = [], []
    for i, sample in enumerate(samples):
        try:
            r = evaluate_multi_sample(
                predictor, sample, strategy="random", tau=10, iou_threshold=0.85, rng=rng
            )
        except ValueError as exc:  # an image whose objects cannot be clicked
            log.warning("train job %s: evaluation skipped an image: %s", ctx.job_id, exc)
            continue
        finals.append(r.final_ious)
        interactions.append(r.num_interactions)
        ctx.save_progress(done + i + 1, total, {"stage": "evaluate"})
    summary = mist_summary(finals, interactions, threshold=0.85)
    return {
        "nci": summary["NCI"],
        "nfo": summary["NFO"],
        "nfi": summary["NFI"],
        "miou": summary["mIoU"],
        "eval_images": summary["num_images"],
        "eval_objects": summary["num_objects"],
        "eval_protocol": "MIST random, tau 10, IoU 0.85",
    }


def _register(
    ctx: JobContext,
    dataset: Dataset,
    params: TrainParams,
    path: Path,
    model_config: Any,
    metrics: dict[str, Any],
) -> int:
    from annotation.modelstore.services import model_register_trained

    name = params.name or f"DynaMITe {params.backbone} · {dataset.name} (job {ctx.job_id})"
    return model_register_trained(
        project_id=dataset.project_id,
        method=METHOD,
        name=name,
        source=path,
        config=asdict(model_config),
        metrics=metrics,
        job_id=ctx.job_id,
    ).id
