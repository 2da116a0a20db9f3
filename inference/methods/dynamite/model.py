"""DynaMITe (ICCV 2023): multi-instance interactive segmentation with clicks as queries.

``DynaMITe.encode`` (backbone + pixel decoder) runs once per image; ``DynaMITe.decode`` (the
interactive transformer) runs per click on the cached features. Module names match the
official detectron2 checkpoints (``backbone.*``, ``sem_seg_head.pixel_decoder.*``,
``sem_seg_head.interactive_transformer.*``) so they load strictly (see ``checkpoint.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import PIXEL_MEAN, PIXEL_STD, build_backbone
from .pixel_decoder import MSDeformAttnPixelDecoder
from .transformer import ClickSet, DecodeOutput, ImageCache, ImageFeatures, InteractiveTransformer

__all__ = [
    "SIZE_DIVISIBILITY",
    "ClickSet",
    "DecodeOutput",
    "DynaMITe",
    "DynamiteConfig",
    "ImageCache",
    "ImageFeatures",
    "Resize",
    "normalise_batch",
    "object_logits",
    "preprocess",
    "resized_size",
]

SIZE_DIVISIBILITY = 32


@dataclass(frozen=True)
class DynamiteConfig:
    """Architecture and input size.

    ``short_side``/``max_side``: the resize of spec A1.1 (shortest edge → short_side, longest
    capped at max_side). The official checkpoints use 800/1333; for effnet-lite0 (our offline
    default, no official checkpoint) the predictor builder uses 512/512, i.e. 512 px on the long
    side, which keeps a CPU click near a second (see the benchmark).
    """

    backbone: str = "effnet-lite0"
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 9
    dec_layers: int = 5
    enc_ffn: int = 2048
    dec_ffn: int = 512
    pixel_decoder_layers: int = 6
    pixel_decoder_ffn: int = 1024
    num_static_bg: int = 9
    short_side: int = 800
    max_side: int = 1333
    pretrained_backbone: bool = True

    @classmethod
    def tiny(cls) -> DynamiteConfig:
        """Small random model for CPU tests: tiny backbone, hidden 32, 2 encoder / 1 decoder
        layers, 1 deformable layer, 128 px long side."""
        return cls(
            backbone="tiny",
            hidden_dim=32,
            nheads=4,
            enc_layers=2,
            dec_layers=1,
            enc_ffn=64,
            dec_ffn=64,
            pixel_decoder_layers=1,
            pixel_decoder_ffn=64,
            num_static_bg=9,
            short_side=128,
            max_side=128,
            pretrained_backbone=False,
        )

    @property
    def num_predictions(self) -> int:
        """1 (before the encoder) + enc_layers + 1 (after the decoder)."""
        return self.enc_layers + 2


class SemSegHead(nn.Module):
    """Container giving the checkpoint prefix ``sem_seg_head.``."""

    def __init__(self, config: DynamiteConfig, in_channels: tuple[int, int, int, int]):
        super().__init__()
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            in_channels,
            conv_dim=config.hidden_dim,
            layers=config.pixel_decoder_layers,
            ffn=config.pixel_decoder_ffn,
            n_heads=config.nheads,
        )
        self.interactive_transformer = InteractiveTransformer(
            config.hidden_dim,
            config.nheads,
            config.enc_layers,
            config.dec_layers,
            config.enc_ffn,
            config.dec_ffn,
            config.num_static_bg,
        )


class DynaMITe(nn.Module):
    def __init__(self, config: DynamiteConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained=config.pretrained_backbone)
        self.sem_seg_head = SemSegHead(config, tuple(self.backbone.channels))
        # non-persistent, as in the official model (absent from checkpoints)
        self.register_buffer(
            "pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), persistent=False)

    @property
    def transformer(self) -> InteractiveTransformer:
        return self.sem_seg_head.interactive_transformer

    def encode(self, images: torch.Tensor) -> ImageFeatures:
        """images: B×3×Hp×Wp normalised (spec A5.4), Hp, Wp multiples of 32 → pixel-decoder
        outputs."""
        if images.shape[-2] % SIZE_DIVISIBILITY or images.shape[-1] % SIZE_DIVISIBILITY:
            raise ValueError(
                f"image size {tuple(images.shape[-2:])} is not padded to a multiple of 32"
            )
        multi_scale, mask_features = self.sem_seg_head.pixel_decoder(self.backbone(images))
        return ImageFeatures(multi_scale, mask_features)

    def decode(
        self,
        features: ImageFeatures,
        clicks: list[ClickSet],
        *,
        cache: ImageCache | None = None,
        all_predictions: bool = True,
        pixel_chunk: int | None = None,
    ) -> DecodeOutput:
        """Mask logits of every query (see :class:`DecodeOutput`). Batches of images with different
        click counts are padded with the zero ``bg_query`` (owner 0). ``cache`` from
        ``self.transformer.prepare(features)`` skips per-image work; ``all_predictions=False``
        returns only the final logits."""
        return self.transformer(
            features, clicks, cache=cache, all_predictions=all_predictions, pixel_chunk=pixel_chunk
        )


def object_logits(logits: torch.Tensor, owner: torch.Tensor, n_objects: int) -> torch.Tensor:
    """Q×h×w logits with Q owners → (N+1)×h×w: index 0 = max over background queries, j = max
    over object j's queries; an object without queries gets the dtype's most negative value."""
    very_negative = torch.finfo(logits.dtype).min
    rows = []
    for j in range(n_objects + 1):
        mine = logits[owner == j]
        rows.append(
            mine.amax(0) if mine.shape[0] else logits.new_full(logits.shape[1:], very_negative)
        )
    return torch.stack(rows)


@dataclass(frozen=True)
class Resize:
    """Sizes of one image: original (h0, w0), resized (h, w), padded (Hp, Wp)."""

    h0: int
    w0: int
    h: int
    w: int
    Hp: int
    Wp: int

    @property
    def scale_yx(self) -> tuple[float, float]:
        """Factors from original to resized pixel coordinates (h/h0, w/w0)."""
        return self.h / self.h0, self.w / self.w0


def resized_size(h0: int, w0: int, short_side: int, max_side: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge: scale the short side to ``short_side``, reduced so the
    long side stays ≤ ``max_side``; round half up."""
    scale = short_side / min(h0, w0)
    if max(h0, w0) * scale > max_side:
        scale = max_side / max(h0, w0)
    return int(h0 * scale + 0.5), int(w0 * scale + 0.5)


def normalise_batch(images_uint8: torch.Tensor) -> torch.Tensor:
    """B×3×H×W RGB in 0–255 (uint8 or float) → float32 (x − mean)/std (spec A5.4)."""
    x = images_uint8.float()
    mean = torch.tensor(PIXEL_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess(image: np.ndarray, config: DynamiteConfig) -> tuple[torch.Tensor, Resize]:
    """H×W×3 uint8 RGB → (1×3×Hp×Wp float32 normalised and zero-padded to /32, sizes).

    Bilinear resize through PIL, as detectron2's ResizeTransform does for uint8 images.
    """
    from PIL import Image

    h0, w0 = image.shape[:2]
    h, w = resized_size(h0, w0, config.short_side, config.max_side)
    if (h, w) != (h0, w0):
        image = np.array(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))
    x = normalise_batch(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])
    hp, wp = (
        -(-h // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY,
        -(-w // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY,
    )
    x = F.pad(x, (0, wp - w, 0, hp - h))  # zeros after normalisation
    return x, Resize(h0, w0, h, w, hp, wp)
