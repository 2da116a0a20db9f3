"""Full-resolution steps of M2N2: joint bilateral upsampling and the min-max flood fill."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def joint_bilateral_upsample(
    maps: torch.Tensor,
    guide: torch.Tensor,
    sigma_spatial: float = 1.0,
    sigma_range: float = 0.1,
    max_offsets: int = 441,
) -> torch.Tensor:
    """Upsample low-resolution maps to the guide's size, edge-aware (Kopf et al., dense variant).

    ``maps``: (P, h, w) float32. ``guide``: (3, H, W) float32 RGB in [0, 1]. First a bilinear
    upsample, then a weighted mean over a 3σ ellipse of offsets (isotropic in low-res units,
    σ_spatial in low-res pixels) with weights spatial Gaussian × exp(−½‖ΔI‖²/σ_range²); pixels
    outside the image are skipped. The official code visits every integer offset, which grows
    with the square of the upsampling factor (≈ 2,900 offsets at 640×480 from a 64² grid);
    ``max_offsets`` caps that by visiting offsets on a regular stride — the same estimator with
    sparser samples. Returns (P, H, W).
    """
    _, height, width = guide.shape
    low_h, low_w = maps.shape[-2:]
    dense = F.interpolate(maps[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    sy, sx = height / low_h, width / low_w
    ry, rx = math.ceil(3 * sy * sigma_spatial), math.ceil(3 * sx * sigma_spatial)
    side = math.isqrt(max_offsets)
    step_y = max(1, math.ceil((2 * ry + 1) / side))
    step_x = max(1, math.ceil((2 * rx + 1) / side))
    pad_y, pad_x = ry, rx
    # Padded copies; `valid` marks real pixels so that borders are skipped, not extended.
    guide_p = F.pad(guide, (pad_x, pad_x, pad_y, pad_y))
    dense_p = F.pad(dense, (pad_x, pad_x, pad_y, pad_y))
    valid = F.pad(torch.ones(1, height, width, device=guide.device), (pad_x, pad_x, pad_y, pad_y))
    numerator = torch.zeros_like(dense)
    denominator = torch.zeros(height, width, device=guide.device)
    inv_r2 = 1.0 / (sigma_range * sigma_range)
    for dy in range(-(ry // step_y) * step_y, ry + 1, step_y):
        for dx in range(-(rx // step_x) * step_x, rx + 1, step_x):
            ny, nx = dy / (sy * sigma_spatial), dx / (sx * sigma_spatial)
            if ny * ny + nx * nx > 9.0:
                continue
            spatial = math.exp(-0.5 * (ny * ny + nx * nx))
            ys, xs = pad_y + dy, pad_x + dx
            shifted = guide_p[:, ys:ys + height, xs:xs + width]
            weight = torch.exp((shifted - guide).square_().sum(0).mul_(-0.5 * inv_r2))
            weight.mul_(valid[0, ys:ys + height, xs:xs + width]).mul_(spatial)
            denominator += weight
            numerator += weight * dense_p[:, ys:ys + height, xs:xs + width]
    return numerator / denominator.clamp_min(1e-12)


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def minmax_flood_fill(values: np.ndarray, start_yx: tuple[int, int]) -> np.ndarray:
    """Bottleneck distance from a start pixel: for every pixel, the minimum over 4-connected
    paths from the start of the maximum |value − value(start)| along the path.

    ``values``: (H, W) float. Returns (H, W) float64 with 0 at the start. This equals a grayscale
    reconstruction by erosion of a marker that is +max everywhere but the start, under the
    deviation image; scikit-image implements that with a priority queue in compiled code.
    """
    from skimage.morphology import reconstruction

    y, x = start_yx
    deviation = np.abs(values.astype(np.float64) - float(values[y, x]))
    seed = np.full_like(deviation, deviation.max())
    seed[y, x] = deviation[y, x]  # 0
    return reconstruction(seed, deviation, method="erosion", footprint=_CROSS)
