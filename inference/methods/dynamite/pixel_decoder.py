"""Mask2Former's deformable-attention pixel decoder with DynaMITe's "refine" fusion (spec A1.3).

Input: backbone maps at strides 4, 8, 16, 32. The three coarsest go through a 6-layer deformable
encoder (coarse to fine: s32, s16, s8); a one-level FPN adds stride 4; the refine convs fuse
s8/s16/s32 into the stride-4 map before the final 1×1 ``mask_features`` conv.
Attribute names are the official ones (``input_proj``, ``transformer.encoder.layers``,
``adapter_1``, ``layer_1``, ``refine``, ``mask_features``) so checkpoints load strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .msdeform import MSDeformAttn

TEMPERATURE = 10000.0


def sine_encode(values: torch.Tensor, num_feats: int) -> torch.Tensor:
    """``values`` (..., float, already in radians-like units, e.g. 2π·u) → (..., num_feats):
    [sin(v·ω_0), cos(v·ω_0), sin(v·ω_1), cos(v·ω_1), …], ω_k = 10000^(−2k/num_feats)."""
    k = torch.arange(num_feats // 2, dtype=torch.float32, device=values.device)
    omega = TEMPERATURE ** (-2.0 * k / num_feats)
    args = values.float()[..., None] * omega
    return torch.stack([args.sin(), args.cos()], dim=-1).flatten(-2)


def pixel_position_encoding(
    height: int, width: int, channels: int, device: torch.device | str
) -> torch.Tensor:
    """channels×height×width float32 sine encoding of a map: row r ↦ 2π·(r+1)/(h+1e-6), column
    c ↦ 2π·(c+1)/(w+1e-6), channels = [enc(row) ‖ enc(col)] (Mask2Former's normalised sine PE)."""
    eps = 1e-6
    rows = (
        torch.arange(1, height + 1, dtype=torch.float32, device=device)
        / (height + eps)
        * 2
        * math.pi
    )
    cols = (
        torch.arange(1, width + 1, dtype=torch.float32, device=device) / (width + eps) * 2 * math.pi
    )
    half = channels // 2
    enc_rows = sine_encode(rows, half)[:, None, :].expand(height, width, half)
    enc_cols = sine_encode(cols, half)[None, :, :].expand(height, width, half)
    return torch.cat([enc_rows, enc_cols], dim=-1).permute(2, 0, 1)


class ConvNorm(nn.Conv2d):
    """detectron2's ``Conv2d`` with an optional ``norm`` submodule and activation (keys
    ``name.weight`` and ``name.norm.{weight,bias}``)."""

    def __init__(self, *args, norm: nn.Module | None = None, relu: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


def c2_xavier_fill(conv: nn.Conv2d) -> None:
    """detectron2/Caffe2 "Xavier": kaiming-uniform with a=1, zero bias."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class DeformableEncoderLayer(nn.Module):
    """Post-norm: deformable self-attention → add → LN → FFN (ReLU) → add → LN."""

    def __init__(self, d_model: int, ffn: int, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, ffn)
        self.linear2 = nn.Linear(ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src, pos, reference_points, level_shapes):
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, level_shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    def __init__(self, layers: list[DeformableEncoderLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class DeformableTransformer(nn.Module):
    """Encoder-only deformable transformer over the flattened levels (``transformer.*`` keys)."""

    def __init__(
        self,
        d_model: int,
        ffn: int,
        layers: int,
        n_levels: int = 3,
        n_heads: int = 8,
        n_points: int = 4,
    ):
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(n_levels, d_model))
        self.encoder = DeformableEncoder(
            [
                DeformableEncoderLayer(d_model, ffn, n_levels, n_heads, n_points)
                for _ in range(layers)
            ]
        )
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: list[torch.Tensor], pos: list[torch.Tensor]) -> list[torch.Tensor]:
        """srcs, pos: per level B×C×h×w (coarse first) → per level B×C×h×w."""
        shapes = [(s.shape[-2], s.shape[-1]) for s in srcs]
        src = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], dim=1)  # B×S×C
        level_pos = torch.cat(
            [
                (p + self.level_embed[i].view(1, -1, 1, 1)).flatten(2).transpose(1, 2)
                for i, p in enumerate(pos)
            ],
            dim=1,
        )
        reference = self._reference_points(shapes, src.device, src.dtype)
        reference = reference[None, :, None, :].expand(src.shape[0], -1, len(shapes), -1)
        for layer in self.encoder.layers:
            src = layer(src, level_pos, reference, shapes)
        out = src.split([h * w for h, w in shapes], dim=1)
        return [o.transpose(1, 2).reshape(src.shape[0], -1, h, w) for o, (h, w) in zip(out, shapes)]

    @staticmethod
    def _reference_points(shapes, device, dtype) -> torch.Tensor:
        """S×2 (x, y): every token's pixel centre, normalised by its level's size (no padding
        masks, so the valid ratios are all 1)."""
        points = []
        for h, w in shapes:
            ys, xs = torch.meshgrid(
                (torch.arange(h, device=device, dtype=dtype) + 0.5) / h,
                (torch.arange(w, device=device, dtype=dtype) + 0.5) / w,
                indexing="ij",
            )
            points.append(torch.stack([xs.flatten(), ys.flatten()], -1))
        return torch.cat(points, 0)


class MSDeformAttnPixelDecoder(nn.Module):
    """Backbone maps → (three multi-scale maps at s32, s16, s8; stride-4 mask features).

    Args:
        in_channels: channels of the backbone maps at strides (4, 8, 16, 32).
        conv_dim: the transformer and mask dim (256).
        layers, ffn, n_heads, n_points: the deformable encoder (6, 1024, 8, 4).
        refine: DynaMITe's refine fusion (True in every released config).
    """

    def __init__(
        self,
        in_channels: tuple[int, int, int, int],
        conv_dim: int = 256,
        layers: int = 6,
        ffn: int = 1024,
        n_heads: int = 8,
        n_points: int = 4,
        refine: bool = True,
    ):
        super().__init__()
        groups = min(32, conv_dim)
        # index 0 is the coarsest level (s32): the official order
        # the convolutions are drawn in the official order (GroupNorm draws nothing), then reset
        convs = [nn.Conv2d(c, conv_dim, kernel_size=1) for c in reversed(in_channels[1:])]
        self.input_proj = nn.ModuleList(
            nn.Sequential(conv, nn.GroupNorm(groups, conv_dim)) for conv in convs
        )
        for conv in convs:
            assert conv.bias is not None
            nn.init.xavier_uniform_(conv.weight, gain=1)
            nn.init.zeros_(conv.bias)
        self.transformer = DeformableTransformer(conv_dim, ffn, layers, 3, n_heads, n_points)
        self.conv_dim = conv_dim
        self.mask_features = nn.Conv2d(conv_dim, conv_dim, kernel_size=1)
        c2_xavier_fill(self.mask_features)
        self.adapter_1 = ConvNorm(
            in_channels[0], conv_dim, kernel_size=1, bias=False, norm=nn.GroupNorm(groups, conv_dim)
        )
        self.layer_1 = ConvNorm(
            conv_dim,
            conv_dim,
            kernel_size=3,
            padding=1,
            bias=False,
            norm=nn.GroupNorm(groups, conv_dim),
            relu=True,
        )
        c2_xavier_fill(self.adapter_1)
        c2_xavier_fill(self.layer_1)
        self.refine = (
            nn.ModuleList(nn.Conv2d(conv_dim, conv_dim, 3, padding=1) for _ in range(3))
            if refine
            else None
        )

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """features: backbone maps at strides 4, 8, 16, 32 (B×C_i×h_i×w_i).

        Returns ([s32, s16, s8] each B×conv_dim×h×w, mask features B×conv_dim×(Hp/4)×(Wp/4)).
        """
        coarse = features[1:][::-1]  # s32, s16, s8
        srcs = [proj(x) for proj, x in zip(self.input_proj, coarse)]
        pos = [
            pixel_position_encoding(s.shape[-2], s.shape[-1], self.conv_dim, s.device)[None].expand(
                s.shape[0], -1, -1, -1
            )
            for s in srcs
        ]
        # the deformable sampling runs in fp32, as the official op does (autocast disabled)
        with torch.autocast(device_type=srcs[0].device.type, enabled=False):
            s32, s16, s8 = self.transformer([s.float() for s in srcs], pos)
        lateral = self.adapter_1(features[0].to(s8.dtype))
        s4 = self.layer_1(
            lateral
            + F.interpolate(s8, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        )
        if self.refine is not None:
            fused = self.refine[0](s8)
            for conv, coarser in ((self.refine[1], s16), (self.refine[2], s32)):
                fused = fused + F.interpolate(
                    conv(coarser), size=s8.shape[-2:], mode="bilinear", align_corners=False
                )
            s4 = s4 + F.interpolate(fused, size=s4.shape[-2:], mode="bilinear", align_corners=False)
        return [s32, s16, s8], self.mask_features(s4)
