"""Small helpers shared by the backbones: image resizing, dtype choice, seeded construction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

# ImageNet statistics, used by the DINO, DINOv2 and MAE image processors alike.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA (what the reference M2N2 code runs), float32 elsewhere (CPU fp16 is slow
    and loses precision in softmax-heavy code)."""
    return torch.float16 if device.type == "cuda" else torch.float32


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under ``torch.manual_seed(seed)`` without disturbing the caller's CPU RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def resize_rgb(
    image: np.ndarray,
    size_hw: tuple[int, int],
    *,
    interpolation: Literal["area", "auto"] = "area",
) -> np.ndarray:
    """Resize an H×W×3 uint8 image to ``size_hw`` = (height, width), uint8.

    ``"area"`` is cv2.INTER_AREA whatever the direction (what the M2N2 code does for SD2 and
    DINOv2); ``"auto"`` uses INTER_AREA to shrink and INTER_LINEAR to enlarge (INTER_AREA is close
    to nearest-neighbour when enlarging).
    """
    import cv2

    height, width = size_hw
    if image.shape[:2] == (height, width):
        return image
    if interpolation == "area" or (height <= image.shape[0] and width <= image.shape[1]):
        flag = cv2.INTER_AREA
    else:
        flag = cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=flag)


def to_normalised_tensor(
    image: np.ndarray,
    *,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """H×W×3 uint8 → (1, 3, H, W) ``dtype`` tensor on ``device``: ``(x / 255 - mean) / std``."""
    array = np.ascontiguousarray(image)
    if not array.flags.writeable:  # torch warns on read-only buffers (e.g. PIL-backed arrays)
        array = array.copy()
    x = torch.from_numpy(array).to(device=device, dtype=torch.float32)
    x = x.permute(2, 0, 1).unsqueeze(0) / 255.0
    m = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)
