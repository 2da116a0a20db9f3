"""CUDA-only checks: fp16 by default, and the same results as on the CPU."""

from __future__ import annotations

import pytest
import torch
from skimage import data

from inference.backbones import build_backbone

from .helpers import assert_row_stochastic

pytestmark = pytest.mark.gpu


def test_effnet_on_gpu_matches_cpu():
    image = data.astronaut()
    cpu = build_backbone("effnet-lite0").features(image)
    gpu = build_backbone("effnet-lite0", device="cuda")
    torch.testing.assert_close(gpu.features(image).cpu(), cpu, atol=2e-3, rtol=1e-3)
    assert_row_stochastic(gpu.affinity(image).matrix, 64 * 64)


@pytest.mark.parametrize("name", ["tiny-dino", "tiny-dinov2", "tiny-mae", "tiny-sd2"])
def test_tiny_backbones_run_in_fp16(name):
    backbone = build_backbone(name, device="cuda")
    assert backbone.dtype == torch.float16
    affinity = backbone.affinity(data.astronaut())
    assert affinity.matrix.is_cuda
    assert_row_stochastic(affinity.matrix, affinity.grid_hw[0] * affinity.grid_hw[1], atol=1e-4)
    assert backbone.features(data.astronaut()).dtype == torch.float32
