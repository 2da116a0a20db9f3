"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch via ``grid_sample``.

The official code needs a compiled CUDA op; this module samples the same bilinear points with
``F.grid_sample`` (align_corners=False, zero padding), which is the op's definition: a sampling
location ``(x, y)`` in [0, 1] of a level of size h×w reads the value at pixel coordinates
``(x·w − 0.5, y·h − 0.5)``, zero outside. The pixel decoder runs once per image, so the extra
memory of the pure version (one sampled tensor per level) does not matter.

Parameter names follow Deformable DETR's ``MSDeformAttn`` so checkpoints load strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn_core(
    value: torch.Tensor,
    level_shapes: list[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted sum of bilinear samples over levels and points.

    Args:
        value: B×S×M×D, S = Σ h_l·w_l tokens of all levels (level-major, row-major), M heads.
        level_shapes: (h_l, w_l) per level, in the order the tokens are stacked.
        sampling_locations: B×Lq×M×L×P×2 float, (x, y) in [0, 1] of each level.
        attention_weights: B×Lq×M×L×P, already softmaxed over (L, P).
    Returns:
        B×Lq×(M·D), same dtype as ``value``.
    """
    batch, _, heads, head_dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    per_level = value.split([h * w for h, w in level_shapes], dim=1)
    grids = 2 * sampling_locations - 1  # grid_sample's [-1, 1] with align_corners=False
    sampled = []
    for level, (h, w) in enumerate(level_shapes):
        # B×S_l×M×D → (B·M)×D×h×w: one "image" per (batch, head)
        v = per_level[level].flatten(2).transpose(1, 2).reshape(batch * heads, head_dim, h, w)
        # B×Lq×M×P×2 → (B·M)×Lq×P×2
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        # (B·M)×D×Lq×P
        sampled.append(
            F.grid_sample(
                v, g.to(v.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
            )
        )
    # (B·M)×D×Lq×(L·P) weighted by (B·M)×1×Lq×(L·P)
    stacked = torch.stack(sampled, dim=-2).flatten(-2)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (stacked * weights.to(stacked.dtype)).sum(-1)  # (B·M)×D×Lq
    return out.view(batch, heads * head_dim, queries).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    """Deformable attention of ``n_heads`` heads, each sampling ``n_points`` per level.

    Args:
        d_model: channels C (256).
        n_levels, n_heads, n_points: 3, 8, 4 in DynaMITe's pixel decoder.
    """

    def __init__(self, d_model: int = 256, n_levels: int = 3, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = (
            d_model,
            n_levels,
            n_heads,
            n_points,
        )
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: offsets start on a ring of directions, one per head, growing
        with the point index; uniform attention; Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        ring = torch.stack([angles.cos(), angles.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True)[0]
        ring = ring.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        ring = ring * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(ring.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value_in: torch.Tensor,
        level_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """Args:
            query: B×Lq×C (content + positional encoding).
            reference_points: B×Lq×L×2, (x, y) in [0, 1] per level.
            value_in: B×S×C, the flattened tokens of all levels.
            level_shapes: (h_l, w_l) per level.
        Returns:
            B×Lq×C.
        """
        batch, queries, _ = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(value_in).view(batch, value_in.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, queries, heads, levels, points)
        # offsets are in pixels of each level: divide by (w_l, h_l) to get [0, 1] units
        size_xy = torch.tensor(
            [[w, h] for h, w in level_shapes], dtype=query.dtype, device=query.device
        )
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / size_xy[None, None, None, :, None, :]
        )
        out = ms_deform_attn_core(value, level_shapes, locations, weights)
        return self.output_proj(out)
