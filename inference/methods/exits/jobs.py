"""EXITS as a ``pseudo_masks`` batch job: train the generator on a dataset's outlined objects,
then write one mask per object (``inference.jobs`` describes the contract)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...jobs import Progress, PseudoMasks
from .batch import run_exits
from .train import ExitsConfig

# The stages run_exits reports, in order, with the passes over the objects each takes.
STAGES = ("warmup", "retrieval", "generator", "generate")


def pseudo_masks(
    objects_json: Path,
    work_dir: Path,
    images_dir: Path,
    params: dict[str, Any],
    device: str,
    progress: Progress,
) -> PseudoMasks:
    """Warm up the similarity extractor, retrieve pseudo points, train the generator and
    generate every object's mask; resumes from ``work_dir``. Progress counts passes over the
    objects across all stages (warm-up epochs + 1 + epochs + 1), in objects."""
    config = ExitsConfig(
        encoder=params["encoder"],
        crop_size=params["crop_size"],
        warmup_epochs=params["warmup_epochs"],
        epochs=params["epochs"],
    )
    passes = {
        "warmup": config.warmup_epochs,
        "retrieval": 1,
        "generator": config.epochs,
        "generate": 1,
    }
    first = {stage: sum(passes[s] for s in STAGES[: STAGES.index(stage)]) for stage in STAGES}
    total_passes = sum(passes.values())
    n = max(len(json.loads(Path(objects_json).read_text())["annotations"]), 1)

    def report(done: int, stage_total: int, stage: str) -> None:
        fraction = done / stage_total if stage_total else 1.0
        start, span = first.get(stage, 0), passes.get(stage, 1)
        progress(int((start + span * fraction) * n), total_passes * n, stage)

    stats = run_exits(
        objects_json,
        Path(work_dir),
        images_dir=images_dir,
        config=config,
        device=device,
        progress=report,
    )
    if not stats.get("completed"):
        raise RuntimeError(f"EXITS stopped before every object had a mask: {stats}")
    model = Path(work_dir) / "generator.safetensors"
    return PseudoMasks(
        masks_json=Path(work_dir) / "pseudo_masks.json",
        model_name=f"exits/{config.encoder}",
        model_file=model if model.exists() else None,
        model_config={"encoder": config.encoder, "crop_size": config.crop_size},
        stats={
            "retrieved_share": stats.get("retrieved_share"),
            "objects_per_s": (stats.get("generate") or {}).get("objects_per_s"),
            "objects": stats.get("objects"),
            "config": asdict(config),
        },
    )
