"""The interactive transformer's building blocks, named as in the official checkpoints.

Every attention is an ``nn.MultiheadAttention`` (packed 768×256 in-projection, so checkpoints
load strictly) but is *run* through :func:`attend`, which can take pre-projected keys/values:
keys and values of image tokens do not depend on the clicks, so the predictor projects them
once per image (spec A2.1, "recommended extra caching"). Layout is sequence-first (L×B×C),
as the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """L×B×C → B×heads×L×(C/heads)."""
    length, batch, channels = x.shape
    return x.view(length, batch, heads, channels // heads).permute(1, 2, 0, 3)


def project(mha: nn.MultiheadAttention, x: torch.Tensor, which: int) -> torch.Tensor:
    """The q (0), k (1) or v (2) in-projection of ``mha`` applied to L×B×C → B×heads×L×d."""
    c = mha.embed_dim
    w = mha.in_proj_weight[which * c : (which + 1) * c]
    b = mha.in_proj_bias[which * c : (which + 1) * c]
    return split_heads(F.linear(x, w, b), mha.num_heads)


def attend(
    mha: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor | None = None,
    value: torch.Tensor | None = None,
    *,
    q: torch.Tensor | None = None,
    k: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
    blocked: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mha(query, key, value, attn_mask=blocked)[0]`` with optional pre-projected q/k/v.

    Args:
        query: Lq×B×C (ignored when ``q`` is given, except for its shape).
        key, value: S×B×C, or None when ``k``/``v`` (B×heads×S×d, from :func:`project`) are given.
        blocked: B×heads×Lq×S bool, True = may not attend (PyTorch's attn_mask convention).
    Returns:
        Lq×B×C.
    """
    q = project(mha, query, 0) if q is None else q
    if k is None:
        if key is None:
            raise ValueError("attend needs key, or its projection k")
        k = project(mha, key, 1)
    if v is None:
        if value is None:
            raise ValueError("attend needs value, or its projection v")
        v = project(mha, value, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if blocked is None else ~blocked)
    batch, heads, length, dim = out.shape
    out = out.permute(2, 0, 1, 3).reshape(length, batch, heads * dim)
    return F.linear(out, mha.out_proj.weight, mha.out_proj.bias)


class SelfAttentionLayer(nn.Module):
    """Post-norm self-attention among queries: Q = K = x + pos, V = x."""

    def __init__(self, d_model: int, nheads: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nheads, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier(self)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        qk = x + pos
        return self.norm(x + attend(self.self_attn, qk, qk, x))


class CrossAttentionLayer(nn.Module):
    """Post-norm cross-attention: Q = x + query_pos, K = memory + pos, V = memory."""

    def __init__(self, d_model: int, nheads: int):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nheads, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier(self)

    def forward(self, x, query_pos, memory=None, pos=None, *, q=None, k=None, v=None, blocked=None):
        """x: Lq×B×C; memory, pos: S×B×C (or pre-projected ``k``/``v``; ``q`` likewise)."""
        key = None if k is not None else memory + pos
        query = x + query_pos if q is None else x
        return self.norm(
            x + attend(self.multihead_attn, query, key, memory, q=q, k=k, v=v, blocked=blocked)
        )


class FFNLayer(nn.Module):
    """Post-norm feed-forward: x + linear2(relu(linear1(x))) → LN."""

    def __init__(self, d_model: int, dim_feedforward: int):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """``layers.{0..n-1}`` Linear with ReLU between (Mask2Former's ``mask_embed``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class Encoder(nn.Module):
    """``encoder.{self,cross}_attention_layers`` and ``encoder.ffn_layers``: query updates."""

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, layers: int):
        super().__init__()
        self.self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(d_model, nheads) for _ in range(layers)
        )
        self.cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(d_model, nheads) for _ in range(layers)
        )
        self.ffn_layers = nn.ModuleList(FFNLayer(d_model, dim_feedforward) for _ in range(layers))


class Decoder(nn.Module):
    """``decoder.cross_attention_layers`` and ``decoder.ffn_layers``: pixel tokens attend to the
    queries (no self-attention among pixels, so every pixel token is independent)."""

    def __init__(self, d_model: int, nheads: int, dim_feedforward: int, layers: int):
        super().__init__()
        self.cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(d_model, nheads) for _ in range(layers)
        )
        self.ffn_layers = nn.ModuleList(FFNLayer(d_model, dim_feedforward) for _ in range(layers))

    def forward(self, pixels, pixel_pos, queries, query_pos, *, first_q=None):
        """pixels, pixel_pos: S×B×C; queries, query_pos: Q×B×C → S×B×C. ``first_q``: the
        cached q-projection of layer 0 (pixels + pos are click-independent there)."""
        keys = queries + query_pos
        for i, (cross, ffn) in enumerate(zip(self.cross_attention_layers, self.ffn_layers)):
            mha = cross.multihead_attn
            k, v = project(mha, keys, 1), project(mha, queries, 2)
            q = first_q if i == 0 and first_q is not None else None
            pixels = ffn(cross(pixels, pixel_pos, q=q, k=k, v=v))
        return pixels


def _xavier(module: nn.Module) -> None:
    """Mask2Former initialises every matrix of its transformer layers Xavier-uniform."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
