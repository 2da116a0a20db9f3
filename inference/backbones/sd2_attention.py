"""Record a weighted head-mean of diffusers UNet self-attention, reduced on the fly.

M2N2 (``src/stable_diffusion_2_attention_aggregator.py``) reads the self-attention probabilities
``softmax(QKᵀ/√d)`` of chosen ``attn1`` layers, averages heads (and batch), adds
``weight × mean`` into one running fp32 sum, and finally divides each row by its sum. At SD2's
128×128 token grid one layer's full per-head probabilities are (5, 16384, 16384) = 5 GiB in fp32,
so :class:`RecordingAttnProcessor` never materialises them: it walks the heads one at a time and
the query rows in chunks, adds ``weight · probs / (heads · batch)`` into a single (N, N) fp32
accumulator, and returns ``probs · V`` so that the UNet's output is what it would have been.
Peak extra memory: the accumulator (1 GiB at N = 16384) plus two ``query_chunk × N`` fp32 buffers.

Use :func:`record_self_attention` as a context manager: it installs processors only on the
weighted layers and restores the original processors on exit, even after an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

# Where the official code takes SD2 attention: up0 and up1 of the last (128×128) up block.
SD2_LAYER_WEIGHTS: dict[str, float] = {
    "up_blocks.3.attentions.0.transformer_blocks.0.attn1": 0.5,
    "up_blocks.3.attentions.1.transformer_blocks.0.attn1": 0.5,
}


class AttentionAccumulator:
    """Running Σ_layers weight · mean_heads,batch(softmax(QKᵀ/√d)) as one (N, N) fp32 tensor."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.recorded: list[str] = []  # layer names, in call order

    def add_rows(self, start: int, probs: torch.Tensor, weight: float) -> None:
        """Add ``weight · probs`` (rows ``start…start+len(probs)`` of an (N, N) map) to the sum."""
        n = probs.shape[-1]
        if self.total is None:
            self.total = torch.zeros(n, n, dtype=torch.float32, device=probs.device)
        elif self.total.shape[0] != n:
            raise ValueError(
                f"weighted layers attend over different token counts: {n} vs "
                f"{self.total.shape[0]}; they must share one grid"
            )
        # detach: a record, never part of an autograd graph (it would keep every chunk alive).
        self.total[start : start + probs.shape[0]].add_(probs.detach().float(), alpha=weight)

    def result(self) -> torch.Tensor:
        """(N, N) float32, each row divided by its sum (rows sum to 1), raster token order.

        Normalises the running sum in place and returns it (no second N×N buffer: 1 GiB at
        N = 16384); calling it again is harmless, the rows already sum to 1.
        """
        if self.total is None:
            raise RuntimeError(
                "no self-attention was recorded: did the UNet run inside record_self_attention()?"
            )
        # Inference tensors (made under torch.inference_mode) only take in-place updates there.
        with torch.inference_mode():
            return self.total.div_(self.total.sum(dim=1, keepdim=True))


class RecordingAttnProcessor:
    """A diffusers attention processor that records self-attention into an accumulator.

    It follows ``diffusers.models.attention_processor.AttnProcessor`` step by step (spatial and
    group norm, projections, ``attn.scale``, upcasting, output projection, residual, rescale), but
    computes the attention one head and ``query_chunk`` query rows at a time.

    Args:
        name: the layer's module path (for the accumulator's bookkeeping).
        accumulator: where the weighted head-mean goes.
        weight: this layer's weight in the sum.
        query_chunk: query rows per step; memory per step is ~2 · query_chunk · N · 4 bytes.
    """

    def __init__(
        self,
        name: str,
        accumulator: AttentionAccumulator,
        *,
        weight: float,
        query_chunk: int = 4096,
    ) -> None:
        if query_chunk < 1:
            raise ValueError(f"query_chunk must be ≥ 1, got {query_chunk}")
        self.name = name
        self.accumulator = accumulator
        self.weight = weight
        self.query_chunk = query_chunk

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError(
                f"{self.name} got encoder_hidden_states: the recorder is for "
                "self-attention (attn1) layers only"
            )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, tokens, _ = hidden_states.shape
        if attention_mask is not None:
            # (batch·heads, 1 or tokens, tokens) → (batch, heads, 1 or tokens, tokens)
            attention_mask = attn.prepare_attention_mask(attention_mask, tokens, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, tokens)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query, key, value = (
            attn.to_q(hidden_states),
            attn.to_k(hidden_states),
            attn.to_v(hidden_states),
        )
        head_dim = key.shape[-1] // attn.heads
        # (batch, tokens, heads·d) → (batch, heads, tokens, d)
        query, key, value = (
            t.view(batch, tokens, attn.heads, head_dim).transpose(1, 2) for t in (query, key, value)
        )
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        out = self._attend(attn, query, key, value, attention_mask)
        self.accumulator.recorded.append(self.name)

        hidden_states = out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))  # linear proj, dropout
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _attend(
        self,
        attn: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """probs · V per (batch, head, query chunk), adding probs into the accumulator.

        q, k, v: (B, H, N, d) in the model dtype; returns (B, H, N, d) in that dtype.
        """
        batch, heads, tokens, _ = query.shape
        # Same precision rules as Attention.get_attention_scores.
        score_dtype = torch.float32 if attn.upcast_attention else query.dtype
        share = self.weight / (heads * batch)
        out = torch.empty_like(query)
        for b in range(batch):
            for h in range(heads):
                k = key[b, h].to(score_dtype)
                for start in range(0, tokens, self.query_chunk):
                    stop = min(start + self.query_chunk, tokens)
                    scores = (query[b, h, start:stop].to(score_dtype) @ k.T).mul_(attn.scale)
                    if mask is not None:
                        scores += mask[b, h, start:stop] if mask.shape[2] > 1 else mask[b, h]
                    if attn.upcast_softmax:
                        scores = scores.float()
                    probs = scores.softmax(dim=-1)
                    del scores
                    self.accumulator.add_rows(start, probs, share)
                    out[b, h, start:stop] = probs.to(value.dtype) @ value[b, h]
        return out


def _self_attention_modules(unet: torch.nn.Module, names: list[str]) -> dict[str, Any]:
    """Resolve layer paths to diffusers ``Attention`` modules, checking they are self-attention."""
    from diffusers.models.attention_processor import Attention

    modules = {}
    for name in names:
        try:
            module = unet.get_submodule(name)
        except AttributeError as exc:
            raise KeyError(f"the UNet has no layer {name!r}") from exc
        if not isinstance(module, Attention):
            raise TypeError(f"{name!r} is a {type(module).__name__}, not a diffusers Attention")
        if module.is_cross_attention:
            raise ValueError(
                f"{name!r} is a cross-attention layer; only self-attention is recorded"
            )
        modules[name] = module
    return modules


@contextlib.contextmanager
def record_self_attention(
    unet: torch.nn.Module,
    layer_weights: Mapping[str, float] = SD2_LAYER_WEIGHTS,
    *,
    query_chunk: int = 4096,
) -> Iterator[AttentionAccumulator]:
    """Install recording processors on the weighted layers; yield their accumulator.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (or any module holding ``Attention`` layers).
        layer_weights: module path → weight; layers with weight 0 are left alone (no cost).
        query_chunk: see :class:`RecordingAttnProcessor`.

    Yields:
        The accumulator; call ``.result()`` after the forward pass. The original processors are
        back in place when the block exits.
    """
    weighted = {name: w for name, w in layer_weights.items() if w != 0}
    if not weighted:
        raise ValueError("layer_weights gives no layer a non-zero weight")
    modules = _self_attention_modules(unet, list(weighted))
    accumulator = AttentionAccumulator()
    originals = {name: module.processor for name, module in modules.items()}
    try:
        for name, module in modules.items():
            module.set_processor(
                RecordingAttnProcessor(
                    name, accumulator, weight=weighted[name], query_chunk=query_chunk
                )
            )
        yield accumulator
    finally:
        for name, module in modules.items():
            module.set_processor(originals[name])
