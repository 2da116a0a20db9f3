"""DynaMITe as a ``train`` batch job: train on a dataset's masks (``inference.jobs`` describes
the contract; the platform evaluates the result with ``inference.evaluation.evaluate_trained``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ...jobs import Progress, Trained


def _model_config(params: dict[str, Any], init: tuple[Path, dict[str, Any]] | None):
    from .model import DynamiteConfig

    if init is not None and init[1]:  # a model to start from keeps its own architecture
        return DynamiteConfig(**{**init[1], "pretrained_backbone": False})
    base = (
        DynamiteConfig.tiny()
        if params["backbone"] == "tiny"
        else DynamiteConfig(backbone=params["backbone"])
    )
    # Served at the crop size it was trained at (short and long side bounded by it).
    return dataclasses.replace(base, short_side=params["crop_size"], max_side=params["crop_size"])


def train_job(
    train_json: Path,
    images_dir: Path,
    work_dir: Path,
    params: dict[str, Any],
    init: tuple[Path, dict[str, Any]] | None,
    device: str,
    progress: Progress,
) -> Trained:
    """Train (checkpoints every ``checkpoint_every`` steps; a rerun resumes from the newest).
    Progress counts the steps."""
    from .train import TrainConfig, train

    model_config = _model_config(params, init)
    total = params["steps"]
    config = TrainConfig(
        annotations=train_json,
        images_dir=images_dir,
        output_dir=Path(work_dir),
        model=model_config,
        init_checkpoint=init[0] if init is not None else None,
        steps=params["steps"],
        batch_size=params["batch_size"],
        crop_size=params["crop_size"],
        lr=params["lr"],
        checkpoint_every=params["checkpoint_every"],
        device=device,
    )

    def report(p) -> None:
        extra = {
            "loss": round(p.loss, 4),
            "s_per_step": round(p.seconds_per_step, 3),
            "eta_s": round(p.eta_s),
        }
        progress(p.step, total, "train", extra)

    result = train(config, progress=report)
    if result.model_path is None:
        raise RuntimeError("training stopped before its last step")
    metrics: dict[str, Any] = {
        "train_steps": result.step,
        "train_s": round(result.seconds, 1),
        "final_loss": round(result.losses[-1], 4) if result.losses else None,
    }
    return Trained(
        model_file=Path(result.model_path),
        model_config=dataclasses.asdict(model_config),
        metrics=metrics,
        resumed_from=result.resumed_from,
        description=f"DynaMITe {model_config.backbone}",
    )
