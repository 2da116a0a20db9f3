"""Training DynaMITe (spec A3): data, iterative corrective clicks, point-sampled loss, AdamW.

::

    from inference.methods.dynamite.train import TrainConfig, train

    result = train(TrainConfig(annotations="coco/instances_train.json", images_dir="coco/train",
                               output_dir="runs/dyn", model=DynamiteConfig(backbone="swin_tiny")))
    result.model_path      # runs/dyn/model.safetensors, loadable with checkpoint.load_model

or ``python -m inference.methods.dynamite.train --annotations … --images … --output …``.

One step: B augmented crops → image features once → k ~ U{0..3} rounds of no-grad decoding,
each adding corrective clicks from the model's own errors to *every* image → a final decode
whose 10 supervised predictions get the loss → AdamW with a full-model gradient-norm clip.

Resumable: every ``checkpoint_every`` steps, on cancel and at the end, ``output_dir/
checkpoints/step_<8 digits>.pt`` is written atomically (temp file, then rename) with the model,
optimiser, scheduler, AMP scaler, step count and RNG states. ``train`` resumes from the latest
one it finds, so a killed run loses at most ``checkpoint_every`` steps. All per-step
randomness (crops, clicks, k, loss points) is drawn from generators seeded by (seed, step), so
a resumed run repeats exactly what an uninterrupted one does (bit-identical on CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from .clicks import corrective_round, initial_click_set
from .data import CocoTrainDataset, TrainSample
from .losses import NUM_POINTS, LossTargets, dynamite_loss
from .run_state import (
    CHECKPOINT_DIR,
    latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_rng_states,
)

if TYPE_CHECKING:
    from .model import DynaMITe

FINAL_MODEL = "model.safetensors"
OFFICIAL_SEED = 2091831170
_NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed")
_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)

AmpMode = Literal["auto", "bf16", "fp16", "off"]


@dataclass
class TrainConfig:
    """Everything a run needs. Defaults are the official ep50 recipe (spec A3.5) except
    ``batch_size``: 2 per device here, 32 over 16 GPUs officially.

    ``model``: the :class:`DynamiteConfig` (None → its defaults). ``init_checkpoint``: a
    published or earlier checkpoint to start from; without one the backbone starts from
    ImageNet weights (``model.pretrained_backbone``) and the rest at random. ``milestones``:
    steps where the LR is multiplied by ``gamma`` (official 163,889 and 177,546 of 184,375).
    ``grad_clip``: max L2 norm of all gradients together (None: no clip). ``amp``: autocast
    on CUDA ("auto" = bf16 where supported, else fp16 with a GradScaler); CPU runs fp32.
    ``freeze_batchnorm``: keep BatchNorm statistics fixed (the official ResNet uses frozen BN;
    batch statistics of 2 crops are noise). ``image_ids``: train on these images only.
    """

    annotations: Path | str
    images_dir: Path | str
    output_dir: Path | str
    model: Any = None
    init_checkpoint: Path | str | None = None
    steps: int = 184_375
    batch_size: int = 2
    crop_size: int = 1024
    lr: float = 1e-4
    backbone_lr_multiplier: float = 0.1
    weight_decay: float = 0.05
    weight_decay_norm: float = 0.0
    weight_decay_embed: float = 0.0
    grad_clip: float | None = 0.01
    milestones: tuple[int, ...] = (163_889, 177_546)
    gamma: float = 0.1
    max_interactions: int = 3
    amp: AmpMode = "auto"
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    seed: int = OFFICIAL_SEED
    device: str | None = None
    image_ids: tuple[int, ...] | None = None
    min_area: float = 400.0
    num_points: int = NUM_POINTS
    official_aux: bool = True
    freeze_batchnorm: bool = True
    num_workers: int = 0


@dataclass
class TrainProgress:
    """Reported after every step. ``step``: steps done (1-based); ``eta_s``: seconds left."""

    step: int
    total: int
    loss: float
    seconds_per_step: float
    eta_s: float
    lr: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """``model_path`` is None when the run was cancelled; ``losses``: this call's steps."""

    step: int
    total: int
    cancelled: bool
    checkpoint_path: Path | None
    model_path: Path | None
    losses: list[float]
    seconds: float
    resumed_from: int


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: backbone LR ×0.1; no weight decay on norms (torch's or any class named
    ``*Norm``), embeddings and Swin's relative-position tables (Mask2Former's
    ``build_optimizer``); biases keep the decay, as there."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr = config.lr * (
                config.backbone_lr_multiplier if module_name.startswith("backbone") else 1.0
            )
            decay = config.weight_decay
            if isinstance(module, _NORMS) or type(module).__name__.endswith("Norm"):
                decay = config.weight_decay_norm
            elif isinstance(module, nn.Embedding):
                decay = config.weight_decay_embed
            elif name in _NO_DECAY_NAMES:
                decay = 0.0
            groups.setdefault((lr, decay), []).append(param)
    return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]


def _step_lr_factor(milestones: Sequence[int], gamma: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return gamma ** sum(step >= m for m in milestones)

    return factor


def _amp_dtype(mode: AmpMode, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


class _StepBatches(torch.utils.data.Dataset):
    """Map-style: item ``step`` is that step's B crops and initial clicks (deterministic), so
    a DataLoader with workers can prefetch and a resumed run sees the same data."""

    def __init__(self, dataset: CocoTrainDataset, batch_size: int, seed: int) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, step: int) -> tuple[list[TrainSample], list[Any], int]:
        rng = np.random.default_rng([self.seed, step, 0])
        samples = [
            self.dataset.sample(int(rng.integers(len(self.dataset))), rng)
            for _ in range(self.batch_size)
        ]
        clicks = [initial_click_set(s.masks, s.background, rng) for s in samples]
        return samples, clicks, step


def _collate(item: Any) -> Any:
    return item


def train_step(
    model: DynaMITe,
    samples: Sequence[TrainSample],
    clicks: list[Any],
    *,
    step_seed: int,
    config: TrainConfig,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward one batch (with its corrective rounds) and return the loss and its parts."""
    from .model import normalise_batch

    rng = np.random.default_rng([step_seed, 1])
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).to(device)
    targets = [
        LossTargets(
            torch.from_numpy(np.concatenate([s.background[None], s.masks])).to(
                device, torch.float32
            )
        )
        for s in samples
    ]
    autocast = torch.autocast(
        device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
    )
    with autocast:
        features = model.encode(normalise_batch(images))
        for _ in range(int(rng.integers(config.max_interactions + 1))):
            with torch.no_grad():
                out = model.decode(features, clicks)
            clicks = corrective_round(
                clicks,
                out.logits[-1].float(),
                out.owner,
                [s.labels for s in samples],
                [s.valid for s in samples],
                rng,
            )
        out = model.decode(features, clicks)
    generator = torch.Generator().manual_seed(step_seed)
    return dynamite_loss(
        out.logits,
        out.owner,
        targets,
        num_points=config.num_points,
        official_aux=config.official_aux,
        generator=generator,
    )


def train(
    config: TrainConfig,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or resume) per ``config``; see the module docstring. Returns when ``steps``
    are done or ``should_stop()`` (checked before every step) returns True."""
    from .model import DynamiteConfig

    started = time.perf_counter()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out_dir = Path(config.output_dir)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model_config = config.model if config.model is not None else DynamiteConfig()
    latest = latest_checkpoint(out_dir)
    state = torch.load(latest, map_location="cpu", weights_only=True) if latest else None
    model = _build_model(config, model_config, device, resuming=state is not None)
    optimizer = torch.optim.AdamW(param_groups(model, config), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _step_lr_factor(config.milestones, config.gamma)
    )
    amp_dtype = _amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_states(state["rng"])
        start = int(state["step"])
    dataset = CocoTrainDataset(
        config.annotations,
        config.images_dir,
        crop_size=config.crop_size,
        image_ids=config.image_ids,
        min_area=config.min_area,
    )
    loader = torch.utils.data.DataLoader(
        _StepBatches(dataset, config.batch_size, config.seed),
        batch_size=None,
        sampler=range(start, config.steps),
        num_workers=config.num_workers,
        collate_fn=_collate,
    )

    def save(step: int) -> Path:
        return save_checkpoint(
            ckpt_dir,
            step,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            model_config=model_config,
            config=config,
        )

    model.train()
    if config.freeze_batchnorm:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    losses: list[float] = []
    step, last_saved, cancelled = start, latest, False
    saved_step = start if latest else -1
    recent: list[float] = []
    for samples, clicks, step_index in loader:
        if should_stop is not None and should_stop():
            cancelled = True
            break
        tic = time.perf_counter()
        loss, parts = train_step(
            model,
            samples,
            clicks,
            step_seed=_step_seed(config.seed, step_index),
            config=config,
            device=device,
            amp_dtype=amp_dtype,
        )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr = max(g["lr"] for g in optimizer.param_groups)  # this step's, before the schedule moves
        scheduler.step()
        step = step_index + 1
        losses.append(float(loss.detach()))
        recent = (recent + [time.perf_counter() - tic])[-20:]
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
            last_saved, saved_step = save(step), step
            prune_checkpoints(ckpt_dir, config.keep_checkpoints)
        if progress is not None:
            per = sum(recent) / len(recent)
            progress(
                TrainProgress(
                    step, config.steps, losses[-1], per, per * (config.steps - step), lr, parts
                )
            )
    if saved_step != step:
        last_saved = save(step)
        prune_checkpoints(ckpt_dir, config.keep_checkpoints)
    model_path = None
    if not cancelled and step >= config.steps:
        from .checkpoint import save_model

        model_path = out_dir / FINAL_MODEL
        save_model(model, model_path, model_config)
    return TrainResult(
        step,
        config.steps,
        cancelled,
        last_saved,
        model_path,
        losses,
        time.perf_counter() - started,
        start,
    )


def _build_model(
    config: TrainConfig, model_config: Any, device: torch.device, *, resuming: bool
) -> DynaMITe:
    from .checkpoint import load_model
    from .model import DynaMITe

    if resuming:  # the checkpoint holds every weight: skip loading ImageNet ones
        return DynaMITe(dataclasses.replace(model_config, pretrained_backbone=False)).to(device)
    if config.init_checkpoint is not None:
        return load_model(config.init_checkpoint, model_config, device=str(device))
    # the random init depends on the seed alone, not on what the caller did before
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return DynaMITe(model_config).to(device)


# ---- command line -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inference.methods.dynamite.train --annotations A --images I --output O``."""
    from .model import DynamiteConfig

    p = argparse.ArgumentParser(
        prog="python -m inference.methods.dynamite.train", description=__doc__.split("\n")[0]
    )
    for flag, kind, default, doc in [
        ("--annotations", str, None, "COCO instances json (required)"),
        ("--images", str, None, "folder of the json's file_names (required)"),
        ("--output", str, None, "run folder: checkpoints/ and model.safetensors (required)"),
        ("--backbone", str, "swin_tiny", "resnet50 | swin_tiny | effnet-lite0 | tiny"),
        ("--init-checkpoint", str, None, "start from these weights (default: ImageNet backbone)"),
        ("--steps", int, 184_375, "total steps (official ep50 schedule)"),
        ("--milestones", str, "163889,177546", "comma-separated steps where the LR is ×0.1"),
        ("--batch-size", int, 2, "images per step"),
        ("--crop-size", int, 1024, "square crop side, a multiple of 32"),
        ("--lr", float, 1e-4, "base learning rate (backbone ×0.1)"),
        ("--grad-clip", float, 0.01, "full-model gradient L2 clip; ≤ 0 disables it"),
        ("--max-interactions", int, 3, "corrective rounds k ~ U{0..this}"),
        ("--num-points", int, NUM_POINTS, "loss points per mask"),
        ("--amp", str, "auto", "auto | bf16 | fp16 | off (CUDA only)"),
        (
            "--checkpoint-every",
            int,
            5000,
            "steps between resumable checkpoints (0: only at the end)",
        ),
        ("--seed", int, OFFICIAL_SEED, "seed of every random draw"),
        ("--device", str, None, "cuda | cpu (default: cuda when available)"),
        ("--workers", int, 0, "data-loading processes"),
    ]:
        p.add_argument(
            flag,
            type=kind,
            default=default,
            help=doc,
            required=flag in ("--annotations", "--images", "--output"),
        )
    a = p.parse_args(argv)
    model_config = (
        DynamiteConfig.tiny() if a.backbone == "tiny" else DynamiteConfig(backbone=a.backbone)
    )
    config = TrainConfig(
        annotations=a.annotations,
        images_dir=a.images,
        output_dir=a.output,
        model=model_config,
        init_checkpoint=a.init_checkpoint,
        steps=a.steps,
        batch_size=a.batch_size,
        crop_size=a.crop_size,
        lr=a.lr,
        grad_clip=a.grad_clip if a.grad_clip > 0 else None,
        num_points=a.num_points,
        milestones=tuple(int(s) for s in a.milestones.split(",") if s.strip()),
        max_interactions=a.max_interactions,
        amp=a.amp,
        checkpoint_every=a.checkpoint_every,
        seed=a.seed,
        device=a.device,
        num_workers=a.workers,
    )

    def report(pr: TrainProgress) -> None:
        if pr.step % 20 == 0 or pr.step == pr.total:
            print(
                f"step {pr.step}/{pr.total} loss {pr.loss:.4f} lr {pr.lr:.2e} "
                f"{pr.seconds_per_step:.2f} s/step ETA {pr.eta_s / 60:.1f} min",
                flush=True,
            )

    result = train(config, progress=report)
    where = result.model_path or result.checkpoint_path
    print(f"{'cancelled' if result.cancelled else 'done'} at step {result.step}: {where}")
    return 1 if result.losses and not math.isfinite(result.losses[-1]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
