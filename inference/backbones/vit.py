"""Self-supervised ViTs through transformers: DINO ViT-S/8, DINOv2 ViT-B/14, MAE ViT-B/16.

For one chosen layer (``layer``, default the last):

* ``features`` = that layer's attention keys (``facet="key"``, the k_proj output, all heads
  concatenated) or its output tokens (``facet="token"``), CLS dropped, as (C, h, w);
* ``affinity`` = that layer's attention probabilities, heads averaged in fp32, CLS row and column
  dropped, each row renormalised to sum to 1 (the CLS column took a share of every row).

Attention probabilities only exist with the eager implementation (transformers' default, SDPA,
returns none), so every model here is switched to ``attn_implementation="eager"``. A forward hook
on the chosen layer's attention module reads its ``(output, weights)`` return, so only that layer's
maps are kept (``output_attentions=True`` would keep all layers': 12 × 2 GB for DINOv2 at 1120 px),
and the forward pass stops right after the chosen layer.

Images are stretched to ``image_size``² with cv2 INTER_AREA (as M2N2 does for DINOv2) and
normalised with ImageNet mean/std; position embeddings are interpolated for sizes other than
the pre-training one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from ..weights import resolve_weights
from ._util import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    default_dtype,
    resize_rgb,
    seeded,
    to_normalised_tensor,
)
from .base import Affinity, Backbone, register_backbone


class _StopForward(Exception):
    """Raised by a hook once the chosen layer has run: the later layers are not needed."""


class VitBackbone(Backbone):
    """Keys/tokens and attention of one layer of a transformers ViT (one CLS token, no registers).

    Args:
        model: a ``ViTModel``, ``Dinov2Model`` or ``ViTMAEModel`` (MAE with ``mask_ratio=0``).
        device, dtype: where and in what precision it runs (fp16 on GPU, fp32 on CPU).
        image_size: square input side in pixels, a multiple of the patch size; the grid is
            ``image_size / patch`` on each side.
        layer: which transformer layer (Python indexing: -1 = last).
        facet: ``"key"`` (attention keys, C = hidden size) or ``"token"`` (layer output).
        forward_kwargs: extra arguments of the model's forward (position interpolation, MAE noise).
    """

    name = "vit"

    def __init__(
        self,
        model: Any,  # a transformers ViT model: its config and attention API beyond nn.Module's
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        image_size: int = 448,
        layer: int = -1,
        facet: Literal["key", "token"] = "key",
        forward_kwargs: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(device)
        self.dtype = dtype or default_dtype(self.device)
        # Eager attention is the only implementation that returns the probabilities.
        model.set_attn_implementation("eager")
        self.model = model.eval().to(self.device, self.dtype)
        self.patch = int(model.config.patch_size)
        if image_size < self.patch or image_size % self.patch:
            raise ValueError(
                f"image_size must be a positive multiple of the patch size "
                f"{self.patch}, got {image_size}"
            )
        self.image_size = image_size
        self.layers = _transformer_layers(model)
        if not -len(self.layers) <= layer < len(self.layers):
            raise ValueError(f"layer {layer} out of range for {len(self.layers)} layers")
        self.layer = layer % len(self.layers)
        if facet not in ("key", "token"):
            raise ValueError(f"facet must be 'key' or 'token', got {facet!r}")
        self.facet = facet
        self._forward_kwargs = forward_kwargs or (lambda tokens: {})

    @property
    def grid_hw(self) -> tuple[int, int]:
        side = self.image_size // self.patch
        return side, side

    def _run(
        self,
        image: np.ndarray,
        *,
        attention: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward up to ``layer``; returns (features (T, C), head-mean attention (T, T) or
        None), T = 1 + h·w tokens with CLS first."""
        x = resize_rgb(image, (self.image_size, self.image_size))
        pixels = to_normalised_tensor(
            x, mean=IMAGENET_MEAN, std=IMAGENET_STD, device=self.device, dtype=self.dtype
        )
        block = self.layers[self.layer]
        got: dict[str, torch.Tensor] = {}

        def keep_keys(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
            got["features"] = output[0]

        def keep_attention(module: torch.nn.Module, args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError(
                    "the attention module returned no probabilities: it needs "
                    "eager attention (and transformers ≥ 5, whose attention "
                    "modules always return them)"
                )
            # (1, heads, T, T) → head mean in fp32, computed now so the per-head maps can go.
            got["attention"] = weights[0].float().mean(dim=0)

        def keep_tokens_and_stop(module: torch.nn.Module, args: Any, output: Any) -> None:
            if self.facet == "token":
                got["features"] = (output[0] if isinstance(output, tuple) else output)[0]
            raise _StopForward

        handles = [block.register_forward_hook(keep_tokens_and_stop)]
        if self.facet == "key":
            handles.append(_key_projection(block).register_forward_hook(keep_keys))
        if attention:
            handles.append(block.get_submodule("attention").register_forward_hook(keep_attention))
        try:
            tokens = (self.image_size // self.patch) ** 2
            self.model(pixel_values=pixels, **self._forward_kwargs(tokens))
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        features = got["features"]
        if features.shape[0] != 1 + self.grid_hw[0] * self.grid_hw[1]:
            raise RuntimeError(
                f"expected 1 CLS + {self.grid_hw[0]}×{self.grid_hw[1]} tokens, "
                f"got {features.shape[0]} (register tokens are not supported)"
            )
        return features, got.get("attention")

    def _features(self, image: np.ndarray) -> torch.Tensor:
        """(C, h, w) float32, CLS dropped; C = hidden size (384 ViT-S, 768 ViT-B)."""
        features, _ = self._run(image, attention=False)
        h, w = self.grid_hw
        return features[1:].float().T.reshape(-1, h, w).contiguous()

    def _affinity(self, image: np.ndarray) -> Affinity:
        """(h·w, h·w) float32: head-mean attention without CLS, rows renormalised."""
        _, attention = self._run(image, attention=True)
        assert attention is not None
        patches = attention[1:, 1:]
        return Affinity(matrix=patches / patches.sum(dim=1, keepdim=True), grid_hw=self.grid_hw)


def _transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The list of transformer blocks: ``layers`` (ViT, MAE in transformers 5) or
    ``encoder.layer`` (DINOv2, and ViT/MAE in transformers 4)."""
    for path in ("layers", "encoder.layer"):
        try:
            found = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, torch.nn.ModuleList):
            return found
    raise TypeError(f"cannot find the transformer layers of a {type(model).__name__}")


def _key_projection(block: torch.nn.Module) -> torch.nn.Module:
    """The key projection of one block, found by suffix (``attention.k_proj`` in transformers 5,
    ``attention.attention.key`` in 4)."""
    for name, module in block.named_modules():
        if name.endswith(("k_proj", "attention.key")):
            return module
    raise TypeError(f"no key projection in a {type(block).__name__}")


def _interpolate_positions(tokens: int) -> dict[str, Any]:
    return {"interpolate_pos_encoding": True}


def _mae_forward(tokens: int) -> dict[str, Any]:
    # MAE shuffles tokens by argsort(noise) even with mask_ratio=0; increasing noise makes the
    # shuffle (and so the token order) the identity, keeping the raster layout.
    noise = torch.arange(tokens, dtype=torch.float32)[None]
    return {"interpolate_pos_encoding": True, "noise": noise}


def _named(backbone: VitBackbone, name: str) -> VitBackbone:
    backbone.name = name
    return backbone


def _load(model_cls_name: str, model_id: str, dtype: torch.dtype, **config: Any) -> torch.nn.Module:
    import transformers

    model_cls = getattr(transformers, model_cls_name)
    path = resolve_weights(model_id)
    return model_cls.from_pretrained(
        path, dtype=dtype, attn_implementation="eager", local_files_only=True, **config
    )


def _dtype(device: str | torch.device, dtype: torch.dtype | None) -> torch.dtype:
    return dtype or default_dtype(torch.device(device))


@register_backbone("dino-vits8")
def build_dino_vits8(
    device: str | torch.device = "cpu",
    *,
    model_id: str = "facebook/dino-vits8",
    dtype: torch.dtype | None = None,
    image_size: int = 448,
    **options: Any,
) -> VitBackbone:
    """DINO ViT-S/8 (384 ch, 6 heads, 12 layers); default 448 px → 56×56 tokens."""
    dtype = _dtype(device, dtype)
    model = _load("ViTModel", model_id, dtype, add_pooling_layer=False)
    return _named(
        VitBackbone(
            model,
            device=device,
            dtype=dtype,
            image_size=image_size,
            forward_kwargs=_interpolate_positions,
            **options,
        ),
        "dino-vits8",
    )


@register_backbone("dinov2-vitb14")
def build_dinov2_vitb14(
    device: str | torch.device = "cpu",
    *,
    model_id: str = "facebook/dinov2-base",
    dtype: torch.dtype | None = None,
    image_size: int = 1120,
    **options: Any,
) -> VitBackbone:
    """DINOv2 ViT-B/14 (768 ch, 12 heads, 12 layers); default 1120 px → 80×80 tokens (M2N2)."""
    dtype = _dtype(device, dtype)
    model = _load("Dinov2Model", model_id, dtype)
    return _named(
        VitBackbone(model, device=device, dtype=dtype, image_size=image_size, **options),
        "dinov2-vitb14",
    )


@register_backbone("mae-vitb16")
def build_mae_vitb16(
    device: str | torch.device = "cpu",
    *,
    model_id: str = "facebook/vit-mae-base",
    dtype: torch.dtype | None = None,
    image_size: int = 448,
    **options: Any,
) -> VitBackbone:
    """MAE ViT-B/16 encoder (768 ch), masking off; default 448 px → 28×28 tokens."""
    dtype = _dtype(device, dtype)
    model = _load("ViTMAEModel", model_id, dtype, mask_ratio=0.0)
    return _named(
        VitBackbone(
            model,
            device=device,
            dtype=dtype,
            image_size=image_size,
            forward_kwargs=_mae_forward,
            **options,
        ),
        "mae-vitb16",
    )


# Tiny random-weight variants: 3 layers, 4 heads, hidden 32; default inputs give 8×8 tokens.
_TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "attn_implementation": "eager",
}


def _tiny(config_cls: str, model_cls: str, seed: int, **config: Any) -> torch.nn.Module:
    import transformers

    with seeded(seed):
        config_object = getattr(transformers, config_cls)(**_TINY, **config)
        return getattr(transformers, model_cls)(config_object)


@register_backbone("tiny-dino")
def build_tiny_dino(
    device: str | torch.device = "cpu", *, seed: int = 0, image_size: int = 64, **options: Any
) -> VitBackbone:
    """Random ViT, patch 8 (as dino-vits8), 64 px → 8×8 tokens."""
    model = _tiny("ViTConfig", "ViTModel", seed, intermediate_size=64, patch_size=8, image_size=32)
    return _named(
        VitBackbone(
            model,
            device=device,
            image_size=image_size,
            forward_kwargs=_interpolate_positions,
            **options,
        ),
        "tiny-dino",
    )


@register_backbone("tiny-dinov2")
def build_tiny_dinov2(
    device: str | torch.device = "cpu", *, seed: int = 0, image_size: int = 112, **options: Any
) -> VitBackbone:
    """Random DINOv2, patch 14, 112 px → 8×8 tokens."""
    model = _tiny("Dinov2Config", "Dinov2Model", seed, mlp_ratio=2, patch_size=14, image_size=28)
    return _named(
        VitBackbone(model, device=device, image_size=image_size, **options), "tiny-dinov2"
    )


@register_backbone("tiny-mae")
def build_tiny_mae(
    device: str | torch.device = "cpu", *, seed: int = 0, image_size: int = 128, **options: Any
) -> VitBackbone:
    """Random ViT-MAE encoder, patch 16, masking off, 128 px → 8×8 tokens."""
    model = _tiny(
        "ViTMAEConfig",
        "ViTMAEModel",
        seed,
        intermediate_size=64,
        patch_size=16,
        image_size=32,
        mask_ratio=0.0,
    )
    return _named(
        VitBackbone(
            model, device=device, image_size=image_size, forward_kwargs=_mae_forward, **options
        ),
        "tiny-mae",
    )
