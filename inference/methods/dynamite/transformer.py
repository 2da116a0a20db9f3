"""DynaMITe's interactive transformer (spec A1.4): clicks → queries → per-query mask logits.

One query per click (content: the click's feature averaged over the three multi-scale maps;
position: sine encoding of (y, x, t)), then padding queries (batch > 1), then the learned static
background queries. A 9-layer masked-attention encoder updates the queries over the s32/s16/s8
maps; a 5-layer decoder lets the stride-4 pixels attend to the queries; the prediction head
dots the queries' mask embeddings with the pixel features. 1 + enc_layers + 1 predictions.

Per-image work that does not depend on clicks (level-embedded tokens, positional encodings,
encoder K/V projections, the decoder's first q-projection, the mask features resized to each
level) can be computed once by :meth:`InteractiveTransformer.prepare` and passed back in.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP, CrossAttentionLayer, Decoder, Encoder, project
from .pixel_decoder import TEMPERATURE, pixel_position_encoding

LEVELS = 3
MIN_TIME_NORMALISER = 500  # u_t = t / max(T, 500)


@dataclass
class ImageFeatures:
    """Pixel-decoder outputs of a batch.

    ``multi_scale``: 3 maps B×C×h×w at strides 32, 16, 8; ``mask_features``: B×C×(Hp/4)×(Wp/4).
    """

    multi_scale: list[torch.Tensor]
    mask_features: torch.Tensor

    def select(self, index: int) -> ImageFeatures:
        """Image ``index`` alone, batch dim kept (1×…)."""
        return ImageFeatures(
            [m[index : index + 1] for m in self.multi_scale], self.mask_features[index : index + 1]
        )

    @property
    def padded_size(self) -> tuple[int, int]:
        """(Hp, Wp): 8× the stride-8 map, the normaliser of click coordinates (spec A1.4.2)."""
        h, w = self.multi_scale[2].shape[-2:]
        return 8 * h, 8 * w


@dataclass(frozen=True)
class ClickSet:
    """One image's clicks (y, x, t) in the resized, unpadded image's pixel grid; ``objects[j]``
    are object j+1's clicks."""

    objects: list[list[tuple[float, float, int]]]
    background: list[tuple[float, float, int]]


@dataclass
class DecodeOutput:
    """``logits``: every prediction, first (before the encoder) to last (after the decoder), each
    B×Q×(Hp/4)×(Wp/4) (only the last when decoding with ``all_predictions=False``); ``owner``:
    B×Q long, query → object 1..N of its image, 0 = background."""

    logits: list[torch.Tensor]
    owner: torch.Tensor


@dataclass
class ImageCache:
    """Click-independent tensors of one batch of images (see module docstring).

    tokens/pos: per level S_l×B×C (content + level embedding) and S_l×1×C; kv: per encoder
    layer (k, v) each B×heads×S×d, or None; pixels/pixel_pos: S4×B×C, S4×1×C; first_q: the
    decoder's layer-0 q-projection B×heads×S4×d or None; head_features: mask features resized
    to each level, B×C×h_l×w_l.
    """

    tokens: list[torch.Tensor]
    pos: list[torch.Tensor]
    sizes: list[tuple[int, int]]
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None
    pixels: torch.Tensor
    pixel_pos: torch.Tensor
    first_q: torch.Tensor | None
    head_features: list[torch.Tensor]


def clamped_sine(u: torch.Tensor, num_feats: int) -> torch.Tensor:
    """(…) normalised coordinate → (…, num_feats) encoding of 2π·u (spec A1.4.3). Negative
    arguments (padding queries carry −1) give sin 0 and cos(π/2) = 0, as the official code."""
    k = torch.arange(num_feats // 2, dtype=torch.float32, device=u.device)
    args = 2 * math.pi * u.float()[..., None] * TEMPERATURE ** (-2.0 * k / num_feats)
    negative = args < 0
    sin = torch.where(negative, torch.zeros_like(args), args).sin()
    cos = torch.where(negative, torch.full_like(args, math.pi / 2), args).cos()
    cos = torch.where(negative, torch.zeros_like(cos), cos)  # cos(π/2) is 6e-17, not 0, in float
    return torch.stack([sin, cos], dim=-1).flatten(-2)


def order_clicks(clicks: ClickSet) -> tuple[list[tuple[float, float, int]], list[int]]:
    """Query order: object 1's clicks, object 2's, …, background clicks; within each group by
    timestamp (stable), so the order the caller lists them in does not matter.
    Returns (clicks, owner per click)."""
    ordered, owner = [], []
    for j, obj in enumerate(clicks.objects, start=1):
        group = sorted(obj, key=lambda c: c[2])
        ordered += group
        owner += [j] * len(group)
    group = sorted(clicks.background, key=lambda c: c[2])
    return ordered + group, owner + [0] * len(group)


class InteractiveTransformer(nn.Module):
    """``sem_seg_head.interactive_transformer``; attribute names as the checkpoints."""

    def __init__(
        self,
        hidden_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 9,
        dec_layers: int = 5,
        enc_ffn: int = 2048,
        dec_ffn: int = 512,
        num_static_bg: int = 9,
    ):
        super().__init__()
        self.hidden_dim, self.nheads = hidden_dim, nheads
        self.encoder = Encoder(hidden_dim, nheads, enc_ffn, enc_layers)
        self.decoder = Decoder(hidden_dim, nheads, dec_ffn, dec_layers)
        self.layer_norm = nn.LayerNorm(hidden_dim)
        self.queries_nonlinear_projection = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.ca_qpos_sine_proj = nn.Linear(3 * (hidden_dim // 2), hidden_dim)
        self.query_embed = nn.Parameter(torch.empty(hidden_dim).normal_())
        self.static_bg_pe = nn.Parameter(torch.empty(num_static_bg, hidden_dim).normal_())
        self.static_bg_query = nn.Parameter(
            nn.init.xavier_uniform_(torch.empty(num_static_bg, hidden_dim))
        )
        # the padding query: saved in checkpoints, never trained
        self.bg_query = nn.Parameter(torch.zeros(hidden_dim), requires_grad=False)
        self.level_embed = nn.Embedding(LEVELS, hidden_dim)
        # identities (256→256)
        self.input_proj = nn.ModuleList(nn.Sequential() for _ in range(LEVELS))
        self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3)

    # ------------------------------------------------------------------ per image
    def prepare(self, features: ImageFeatures, *, cache_kv: bool = True) -> ImageCache:
        """Click-independent tensors of ``features`` (see :class:`ImageCache`)."""
        tokens, pos, sizes = [], [], []
        for level, x in enumerate(features.multi_scale):
            h, w = x.shape[-2:]
            sizes.append((h, w))
            tokens.append(x.flatten(2).permute(2, 0, 1) + self.level_embed.weight[level])
            pos.append(
                pixel_position_encoding(h, w, self.hidden_dim, x.device)
                .flatten(1)
                .T[:, None]
                .to(x.dtype)
            )
        kv = None
        if cache_kv:
            kv = []
            for i, cross in enumerate(self.encoder.cross_attention_layers):
                assert isinstance(cross, CrossAttentionLayer)
                mha, level = cross.multihead_attn, i % LEVELS
                kv.append(
                    (project(mha, tokens[level] + pos[level], 1), project(mha, tokens[level], 2))
                )
        mf = features.mask_features
        pixels = mf.flatten(2).permute(2, 0, 1)
        pixel_pos = (
            pixel_position_encoding(mf.shape[-2], mf.shape[-1], self.hidden_dim, mf.device)
            .flatten(1)
            .T[:, None]
            .to(mf.dtype)
        )
        first_q = None
        if cache_kv and len(self.decoder.cross_attention_layers):
            first = self.decoder.cross_attention_layers[0]
            assert isinstance(first, CrossAttentionLayer)
            first_q = project(first.multihead_attn, pixels + pixel_pos, 0)
        head_features = [
            F.interpolate(mf, size=s, mode="bilinear", align_corners=False) for s in sizes
        ]
        return ImageCache(tokens, pos, sizes, kv, pixels, pixel_pos, first_q, head_features)

    # ------------------------------------------------------------------ per click set
    def build_queries(self, features: ImageFeatures, clicks: list[ClickSet]):
        """(content Q×B×C, position Q×B×C, owner B×Q long) for a batch of click sets."""
        multi_scale = features.multi_scale
        batch, device = multi_scale[0].shape[0], multi_scale[0].device
        if len(clicks) != batch:
            raise ValueError(f"{len(clicks)} click sets for a batch of {batch} images")
        ordered = [order_clicks(c) for c in clicks]
        dynamic = max(len(o[0]) for o in ordered)
        coords = torch.full((batch, dynamic, 3), -1.0, device=device)
        owner = torch.zeros(
            (batch, dynamic + self.static_bg_query.shape[0]), dtype=torch.long, device=device
        )
        valid = torch.zeros((batch, dynamic), dtype=torch.bool, device=device)
        for b, (points, owners) in enumerate(ordered):
            if points:
                coords[b, : len(points)] = torch.tensor(points, dtype=torch.float32, device=device)
                owner[b, : len(points)] = torch.tensor(owners, device=device)
                valid[b, : len(points)] = True
        hp, wp = features.padded_size
        dtype = multi_scale[0].dtype
        content = self.bg_query.to(dtype).expand(batch, dynamic, -1)
        if dynamic:
            # grid_sample's align_corners=False convention: grid value 2u − 1, u = x/Wp
            grid = torch.stack([2 * coords[..., 1] / wp - 1, 2 * coords[..., 0] / hp - 1], -1)[
                :, None
            ]
            samples = [
                F.grid_sample(
                    m, grid.to(m.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
                )
                for m in multi_scale
            ]
            sampled = functools.reduce(operator.add, samples) / len(samples)
            content = torch.where(valid[..., None], sampled[:, :, 0].transpose(1, 2), content)
        # normaliser max(T, 500) per image; the constant column keeps it defined without clicks
        floor = torch.full((batch, 1), float(MIN_TIME_NORMALISER), device=device)
        times = torch.cat([coords[..., 2], floor], dim=1).amax(dim=1, keepdim=True)
        u = torch.stack([coords[..., 0] / hp, coords[..., 1] / wp, coords[..., 2] / times], -1)
        u = torch.where(valid[..., None], u, torch.full_like(u, -1.0))
        sine = clamped_sine(u, self.hidden_dim // 2).flatten(-2)  # B×Qd×3·C/2
        pos = self.ca_qpos_sine_proj(sine.to(dtype)) + self.query_embed
        content = torch.cat([content, self.static_bg_query.to(dtype).expand(batch, -1, -1)], 1)
        pos = torch.cat([pos, self.static_bg_pe.to(dtype).expand(batch, -1, -1)], 1)
        content = self.queries_nonlinear_projection(content)
        return content.transpose(0, 1), pos.transpose(0, 1), owner

    def _embed(self, queries: torch.Tensor) -> torch.Tensor:
        """Q×B×C queries → B×Q×C mask embeddings."""
        return self.mask_embed(self.layer_norm(queries)).transpose(0, 1)

    def _blocked(self, level_logits: torch.Tensor) -> torch.Tensor:
        """B×Q×h×w logits → B×heads×Q×(h·w) bool, True = blocked (sigmoid < 0.5); a query blocked
        everywhere is unblocked everywhere (Mask2Former)."""
        blocked = level_logits.sigmoid().flatten(2) < 0.5
        blocked = blocked & ~blocked.all(-1, keepdim=True)
        return blocked[:, None].expand(-1, self.nheads, -1, -1).detach()

    def forward(
        self,
        features: ImageFeatures,
        clicks: list[ClickSet],
        *,
        cache: ImageCache | None = None,
        all_predictions: bool = True,
        pixel_chunk: int | None = None,
    ) -> DecodeOutput:
        """Run the transformer for one click set per image.

        ``all_predictions=False`` returns only the final logits and computes the attention masks
        directly at each level's size from the resized mask features (exact: bilinear resizing
        and the per-pixel dot product are both linear). ``pixel_chunk`` runs the decoder over that
        many pixels at a time (inference: pixels are independent in the decoder).
        """
        cache = cache if cache is not None else self.prepare(features, cache_kv=False)
        mask_features = features.mask_features
        output, qpos, owner = self.build_queries(features, clicks)

        def predict(queries, level):
            embed = self._embed(queries)
            if all_predictions:
                full = torch.einsum("bqc,bchw->bqhw", embed, mask_features)
                small = F.interpolate(
                    full, size=cache.sizes[level], mode="bilinear", align_corners=False
                )
                return full, self._blocked(small)
            small = torch.einsum("bqc,bchw->bqhw", embed, cache.head_features[level])
            return None, self._blocked(small)

        logits = []
        full, blocked = predict(output, 0)
        logits.append(full)
        enc = self.encoder
        for i in range(len(enc.cross_attention_layers)):
            level = i % LEVELS
            k, v = cache.kv[i] if cache.kv is not None else (None, None)
            output = enc.cross_attention_layers[i](
                output, qpos, cache.tokens[level], cache.pos[level], k=k, v=v, blocked=blocked
            )
            output = enc.self_attention_layers[i](output, qpos)
            output = enc.ffn_layers[i](output)
            full, blocked = predict(output, (i + 1) % LEVELS)
            logits.append(full)
        pixels = self._decode_pixels(cache, output, qpos, pixel_chunk)
        b, c, h, w = mask_features.shape
        decoded = pixels.permute(1, 2, 0).reshape(b, c, h, w)
        logits.append(torch.einsum("bqc,bchw->bqhw", self._embed(output), decoded))
        if not all_predictions:
            logits = logits[-1:]
        return DecodeOutput(logits=logits, owner=owner)

    def _decode_pixels(self, cache: ImageCache, queries, qpos, chunk: int | None) -> torch.Tensor:
        """S4×B×C decoder output; in chunks of pixels when asked."""
        total = cache.pixels.shape[0]
        if not chunk or chunk >= total:
            return self.decoder(cache.pixels, cache.pixel_pos, queries, qpos, first_q=cache.first_q)
        parts = []
        for start in range(0, total, chunk):
            part = slice(start, start + chunk)
            first_q = None if cache.first_q is None else cache.first_q[:, :, part]
            parts.append(
                self.decoder(
                    cache.pixels[part], cache.pixel_pos[part], queries, qpos, first_q=first_q
                )
            )
        return torch.cat(parts, 0)
