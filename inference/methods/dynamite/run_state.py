"""A training run's files: resumable checkpoints (``checkpoints/step_<8 digits>.pt``, written
atomically, plain types only so ``torch.load(weights_only=True)`` opens them) and the RNG
states that make a resumed run repeat an uninterrupted one."""

from __future__ import annotations

import dataclasses
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_DIR = "checkpoints"
_CKPT = re.compile(r"step_(\d{8})\.pt$")


def latest_checkpoint(output_dir: Path | str) -> Path | None:
    """The highest-step ``checkpoints/step_*.pt`` under ``output_dir``, or None."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    found = [(int(m[1]), p) for p in folder.glob("step_*.pt") if (m := _CKPT.search(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(
    folder: Path,
    step: int,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    model_config: Any,
    config: Any,
) -> Path:
    """Write ``folder/step_<step>.pt`` atomically; plain types only, so it loads with
    ``torch.load(..., weights_only=True)``. The ``"model"`` key makes it loadable by
    :func:`checkpoint.load_model` like an official checkpoint."""
    path = folder / f"step_{step:08d}.pt"
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "step": step,
        "rng": _rng_states(),
        "model_config": _plain(dataclasses.asdict(model_config)),
        "train_config": _plain(dataclasses.asdict(config)),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a reader sees the old set of files or the complete new one
    return path


def prune_checkpoints(folder: Path, keep: int) -> None:
    found = sorted((int(m[1]), p) for p in folder.glob("step_*.pt") if (m := _CKPT.search(p.name)))
    for _, path in found[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    """Dataclass dicts with Paths/tuples/nested configs → str/list/dict (safe to unpickle)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _rng_states() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the legacy tuple form, as asked
    return {
        "python": [version, list(internal), gauss],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            *map(_plain, np_state[2:]),
        ],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
