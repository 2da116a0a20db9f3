"""A trained model of any method, evaluated on held-back images with the MIST protocol."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import load_trained
from .datasets import CocoDataset
from .loop import evaluate_multi_sample, mist_rng
from .metrics import mist_summary
from .multi_instance import as_multi_instance

log = logging.getLogger(__name__)
PROTOCOL = "MIST random, tau 10, IoU 0.85"


def evaluate_trained(
    method: str,
    model_file: Path,
    model_config: dict[str, Any],
    eval_json: Path,
    images_dir: Path,
    device: str,
    done: Callable[[int], None] = lambda i: None,
) -> dict[str, Any]:
    """MIST (random strategy, τ = 10, IoU 0.85) of ``method``'s model ``model_file`` (loaded
    through its ``TrainedWeights``) on the images of ``eval_json`` (COCO masks); ``done(i)``
    after each image. Methods that are not multi-instance get the per-object adapter."""
    predictor = as_multi_instance(load_trained(method, model_file, model_config, device))
    samples = CocoDataset(eval_json, images_dir, protocol="multi")
    rng = mist_rng(0)
    finals, interactions = [], []
    for i, sample in enumerate(samples):
        try:
            r = evaluate_multi_sample(
                predictor, sample, strategy="random", tau=10, iou_threshold=0.85, rng=rng
            )
        except ValueError as exc:  # an image whose objects cannot be clicked
            log.warning("evaluation skipped an image: %s", exc)
            continue
        finals.append(r.final_ious)
        interactions.append(r.num_interactions)
        done(i + 1)
    summary = mist_summary(finals, interactions, threshold=0.85)
    return {
        "nci": summary["NCI"],
        "nfo": summary["NFO"],
        "nfi": summary["NFI"],
        "miou": summary["mIoU"],
        "eval_images": summary["num_images"],
        "eval_objects": summary["num_objects"],
        "eval_protocol": PROTOCOL,
    }
