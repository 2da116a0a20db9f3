"""Training the similarity extractor (warm-up) and the pseudo-label generator; point retrieval.

Stages, all driven by :class:`ExitsConfig`:

1. **Warm-up** (``warmup_epochs``): a generator trained with what needs no retrieval: MIL on
   the box, point loss on the δ-shifted extreme points (FG) and outside-box points (BG), CRF.
   Its encoder is the similarity extractor.
2. **Retrieval**: for each object, on its test crop, T = Sinkhorn(S), α-step propagation and
   the τ thresholds (:mod:`.propagation`) → pseudo FG/BG points, kept in image coordinates.
3. **Generator** (``epochs``): L = λ_mil·L_mil + λ_point·L_point + λ_crf·L_crf, MIL only for
   objects without retrieved points (supplement Sec. B).

Checkpoints after every epoch (``<dir>/<stage>.pt``: model, optimiser, scheduler, epoch);
training resumes from them. Each epoch's shuffling and augmentation come from a generator
seeded by (seed, stage, epoch), so a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import ImageCache, ObjectRecord, PseudoPoints, epoch_order, make_batch
from .generator import PseudoLabelGenerator, build_generator
from .losses import crf_loss, mil_loss, point_loss
from .points import DELTA_AT_512, crop_image, crop_window, points_in_window, shift_inward
from .propagation import (
    DEFAULT_SINKHORN_ITERS,
    DEFAULT_STEPS,
    DEFAULT_TAU_BG,
    DEFAULT_TAU_FG,
    retrieve_points,
    sinkhorn,
)

Progress = Callable[[int, int, str], None]  # (done, total, stage)
CRF_MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
CRF_STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)


@dataclass
class ExitsConfig:
    """Everything that shapes training and generation (defaults: CPU-sized, see each line).

    Paper values where the sources give them: δ = 24 px at 512 (COCO), α = 3, λ_mil = 10,
    λ_point = λ_crf = 0.5 (COCO/LVIS; VOC λ_point 0.05), 8 warm-up epochs, MAE-ViT encoder,
    512 px crops. Our CPU defaults shrink crops, encoder and epochs; each is named here.
    """

    encoder: str = "effnet-lite0"  # paper: MAE ViT-B ("mae-vitb16", needs local weights)
    crop_size: int = 160  # paper 512; CPU default (must be a multiple of 32)
    delta_at_512: float = DELTA_AT_512["coco"]
    steps: int = DEFAULT_STEPS  # α
    sinkhorn_iters: int = DEFAULT_SINKHORN_ITERS
    tau_fg: float = DEFAULT_TAU_FG
    tau_bg: float = DEFAULT_TAU_BG
    warmup_epochs: int = 2  # paper 8
    epochs: int = 6  # MAL 10
    init_from_warmup: bool = True  # paper: separate extractor and generator; CPU shortcut
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 5e-4
    lambda_mil: float = 10.0
    lambda_point: float = 0.5
    lambda_crf: float = 0.5
    mil_only_without_points: bool = True
    crf_iterations: int = 20  # MAL 100; 20 to save CPU time (not compared with 100)
    max_points: int = 48
    outside_points: int = 8
    mask_threshold: float = 0.5
    generate_batch_size: int = 32  # crops per forward when generating
    refine: str = "grabcut"  # "none": the network's mask; "crf": mean-field at crop size;
    # "grabcut": GrabCut at full size, gated (below)
    refine_iterations: int = 10  # mean-field iterations of refine="crf"
    # refine="grabcut" keeps GrabCut's mask only where it agrees with the network's (IoU ≥ this):
    # on clean large objects GrabCut snaps the edges (GrabCut set 0.814 → 0.906), on cluttered
    # COCO scenes it leaks and is mostly discarded (0.707 → 0.714); bench exits, 2 threads
    refine_min_agreement: float = 0.6
    seed: int = 0

    @property
    def delta(self) -> float:
        """δ in crop pixels."""
        return self.delta_at_512 * self.crop_size / 512

    def __post_init__(self) -> None:
        if self.crop_size < 32 or self.crop_size % 32:
            raise ValueError(f"crop_size must be a positive multiple of 32, got {self.crop_size}")
        if self.refine not in ("none", "crf", "grabcut"):
            raise ValueError(f"refine must be 'none', 'crf' or 'grabcut', got {self.refine!r}")
        if not 0.0 <= self.refine_min_agreement <= 1.0:
            raise ValueError(
                f"refine_min_agreement must be in [0, 1], got {self.refine_min_agreement}"
            )


def _rng(config: ExitsConfig, stage: str, epoch: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, sum(map(ord, stage)), epoch])


def _save_atomic(obj: dict, path: Path) -> None:
    partial = path.with_suffix(".tmp")
    torch.save(obj, partial)
    os.replace(partial, path)  # a checkpoint exists whole or not at all


def losses_for_batch(
    model: PseudoLabelGenerator, batch, config: ExitsConfig, *, warmup: bool, device: torch.device
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted loss (scalar) and its parts for one :class:`~.data.Batch`."""
    x = model.normalise(batch.crops.to(device))
    logits = model(x)
    prob = torch.sigmoid(logits)
    boxes = batch.boxes.to(device)
    size = logits.shape[-1]
    crf_image = (
        batch.crops.to(device).permute(0, 3, 1, 2).float() / 255.0 - CRF_MEAN.to(device)
    ) / CRF_STD.to(device)
    crf_image = F.interpolate(crf_image, size=(size, size), mode="area")
    l_mil = mil_loss(prob, boxes)
    if not warmup and config.mil_only_without_points:
        l_mil = l_mil * (~batch.has_pseudo.to(device)).float()
    l_point = point_loss(
        logits, batch.points.to(device), batch.labels.to(device), batch.valid.to(device)
    )
    l_crf = crf_loss(prob, crf_image, boxes, iterations=config.crf_iterations)
    total = (
        config.lambda_mil * l_mil + config.lambda_point * l_point + config.lambda_crf * l_crf
    ).mean()
    return total, {
        "mil": float(l_mil.detach().mean()),
        "point": float(l_point.detach().mean()),
        "crf": float(l_crf.detach().mean()),
    }


def train_stage(
    model: PseudoLabelGenerator,
    records: list[ObjectRecord],
    config: ExitsConfig,
    *,
    stage: str,
    epochs: int,
    checkpoint: Path | None,
    device: str | torch.device = "cpu",
    pseudo: dict[int, PseudoPoints] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Train ``model`` for ``epochs`` (resuming from ``checkpoint`` when it exists).

    Returns ``{"epochs_done", "completed" (1.0 / 0.0), "s_per_epoch", <mean losses of the last
    epoch>}``. A stop request ends training at the next batch; the epoch in progress is lost.
    """
    device = torch.device(device)
    model.to(device).train()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.9), weight_decay=config.weight_decay
    )
    steps_per_epoch = max(1, math.ceil(len(records) / config.batch_size))
    total_steps = max(1, epochs * steps_per_epoch)
    # Cosine decay to 0.2·lr (MAL); MAL's one-epoch linear warm-up is shortened to 5 % of steps.
    warm = max(1, total_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min(
            (step + 1) / warm,
            0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)),
        ),
    )
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start = int(state["epoch"])
    cache = ImageCache()
    timings: list[float] = []
    parts: dict[str, list[float]] = {}
    completed = True
    for epoch in range(start, epochs):
        rng = _rng(config, stage, epoch)
        order = epoch_order(records, rng)
        started = time.perf_counter()
        parts = {}
        for step in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                completed = False
                break
            chosen = [
                records[i] for i in order[step * config.batch_size : (step + 1) * config.batch_size]
            ]
            if not chosen:
                continue
            batch = make_batch(
                chosen,
                cache,
                size=config.crop_size,
                delta=config.delta,
                train=True,
                rng=rng,
                pseudo=pseudo,
                max_points=config.max_points,
                outside_points=config.outside_points,
            )
            loss, values = losses_for_batch(
                model, batch, config, warmup=stage == "warmup", device=device
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            for k, v in values.items():
                parts.setdefault(k, []).append(v)
            if progress is not None:
                progress(epoch * steps_per_epoch + step + 1, total_steps, stage)
        if not completed:
            break
        timings.append(time.perf_counter() - started)
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            _save_atomic(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(),
                    "epoch": epoch + 1,
                    "config": asdict(config),
                },
                checkpoint,
            )
        start = epoch + 1
    model.eval()
    result = {
        "epochs_done": float(start),
        "completed": float(completed and start >= epochs),
        "s_per_epoch": float(np.mean(timings)) if timings else float("nan"),
    }
    result.update({k: float(np.mean(v)) for k, v in parts.items()})
    return result


@torch.no_grad()
def retrieve_all(
    extractor: PseudoLabelGenerator,
    records: list[ObjectRecord],
    config: ExitsConfig,
    *,
    device: str | torch.device = "cpu",
    should_stop: Callable[[], bool] | None = None,
) -> dict[int, PseudoPoints]:
    """Pseudo points of every object with extreme points (module docstring, stage 2), in image
    coordinates; objects given by a box only are left out (they get MIL supervision)."""
    device = torch.device(device)
    extractor.to(device).eval()
    cache = ImageCache()
    found: dict[int, PseudoPoints] = {}
    size = config.crop_size
    todo = sorted((r for r in records if r.points is not None), key=lambda r: r.image_id)
    for first in range(0, len(todo), config.generate_batch_size):
        if should_stop is not None and should_stop():
            break
        chunk = todo[first : first + config.generate_batch_size]
        windows = [crop_window(r.box, size) for r in chunk]
        crops = np.stack([crop_image(cache.get(r.image_path), w) for r, w in zip(chunk, windows)])
        similarities = extractor.similarity(extractor.normalise(torch.from_numpy(crops).to(device)))
        side = round(math.sqrt(similarities.shape[-1]))
        cell = size / side
        for record, window, similarity in zip(chunk, windows, similarities):
            assert record.points is not None
            seeds = shift_inward(points_in_window(record.points, window), config.delta)
            got = retrieve_points(
                sinkhorn(similarity, config.sinkhorn_iters),
                (side, side),
                seeds,
                window.box_in_crop(record.box),
                size,
                steps=config.steps,
                tau_fg=config.tau_fg,
                tau_bg=config.tau_bg,
            )
            centres = [
                window.to_image((np.argwhere(m)[:, ::-1] + 0.5) * cell).astype(np.float32)
                for m in (got.foreground, got.background)
            ]
            found[record.ann_id] = PseudoPoints(*centres)
    return found


def new_generator(config: ExitsConfig, *, seed_offset: int = 0) -> PseudoLabelGenerator:
    return build_generator(config.encoder, seed=config.seed + seed_offset)


@torch.no_grad()
def predict_probabilities(
    model: PseudoLabelGenerator,
    crops: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    amp: bool = False,
    crf_iterations: int = 0,
) -> np.ndarray:
    """(B, S, S, 3) uint8 crops → (B, S/4, S/4) float32 mask probabilities. ``amp``: fp16
    autocast on CUDA. ``crf_iterations > 0``: upsample to (B, S, S) and run that many
    mean-field iterations of the training CRF (box-free) on the crop, snapping the coarse
    output to colour edges (``ExitsConfig.refine="crf"``)."""
    device = torch.device(device)
    uint8 = torch.from_numpy(np.ascontiguousarray(crops)).to(device)
    x = model.normalise(uint8)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
        logits = model(x)
    prob = torch.sigmoid(logits.float())
    if crf_iterations > 0:
        from .losses import crf_refine

        prob = F.interpolate(prob, size=x.shape[-2:], mode="bilinear", align_corners=False)
        image = (uint8.permute(0, 3, 1, 2).float() / 255.0 - CRF_MEAN.to(device)) / CRF_STD.to(
            device
        )
        prob = crf_refine(prob, image, torch.ones_like(prob), iterations=crf_iterations)
    return prob[:, 0].cpu().numpy()
