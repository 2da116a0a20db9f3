"""A tiny random SAM 3 checkpoint folder, for tests: the real layout, loaded the real way.

:func:`save_tiny_sam3` writes what ``facebook/sam3`` holds (``config.json``,
``model.safetensors``, the processor's and tokenizer's files) at toy sizes: 56×56 input
(4×4 patches of 14), 32-wide layers, one or two layers per stage, 8 queries, and a byte-level
CLIP tokenizer whose vocabulary is built here (every byte alone and as a word end), so nothing
is downloaded. Its masks mean nothing; tests compare it with transformers' own pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TINY_IMAGE_SIZE = 56  # pixels; 4×4 patches of 14 → FPN maps 16², 8², 4², 2²
TINY_QUERIES = 8
_WIDTH = 32  # every hidden size
_HEADS = 4
_MLP = 64
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def tiny_vocab() -> dict[str, int]:
    """token → id: the two CLIP special tokens, then each of the 256 byte-level characters on
    its own and with the word-end mark ``</w>`` (CLIP's BPE marks a word's last piece), so
    every text tokenizes (one token per byte) without merges and without unknown tokens."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [BOS, EOS, *alphabet, *(f"{c}</w>" for c in alphabet)]
    return {token: i for i, token in enumerate(tokens)}


def tiny_sam3_config(vocab_size: int) -> object:
    """A ``Sam3Config`` with SAM 3's structure (ViT with windowed and global attention, 4-level
    FPN, CLIP text encoder, DETR encoder/decoder with presence token, 3-stage pixel decoder) at
    toy sizes."""
    from transformers.models.sam3.configuration_sam3 import (
        Sam3Config,
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    sizes: dict[str, Any] = {
        "hidden_size": _WIDTH,
        "num_attention_heads": _HEADS,
        "intermediate_size": _MLP,
    }
    backbone = Sam3ViTConfig(
        **sizes,
        num_hidden_layers=2,
        image_size=TINY_IMAGE_SIZE,
        pretrain_image_size=TINY_IMAGE_SIZE,
        patch_size=14,
        window_size=2,  # layer 0 windowed (2×2 patches), layer 1 global, as SAM 3 alternates
        global_attn_indexes=[1],
    )
    patches = TINY_IMAGE_SIZE // 14
    return Sam3Config(
        vision_config=Sam3VisionConfig(
            backbone_config=backbone,
            fpn_hidden_size=_WIDTH,
            backbone_feature_sizes=[[4 * patches] * 2, [2 * patches] * 2, [patches] * 2],
        ),
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": _WIDTH,
            "intermediate_size": _MLP,
            "projection_dim": _WIDTH,
            "num_hidden_layers": 1,
            "num_attention_heads": _HEADS,
            "max_position_embeddings": 32,  # SAM 3's: the processor pads text to 32 tokens
            "hidden_act": "gelu",
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        geometry_encoder_config=Sam3GeometryEncoderConfig(**sizes, num_layers=1),
        detr_encoder_config=Sam3DETREncoderConfig(**sizes, num_layers=1),
        detr_decoder_config=Sam3DETRDecoderConfig(**sizes, num_layers=1, num_queries=TINY_QUERIES),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=_WIDTH, num_attention_heads=_HEADS),
    )


def save_tiny_sam3(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random ``Sam3Model`` and a matching ``Sam3Processor`` (56×56 images, the
    tokenizer of :func:`tiny_vocab`) to ``folder`` with ``save_pretrained``; returns ``folder``.
    Same ``seed``, same weights; the global torch RNG is left as it was."""
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Model, Sam3Processor

    folder = Path(folder)
    vocab = tiny_vocab()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam3Model(tiny_sam3_config(len(vocab))).eval()  # type: ignore[arg-type]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    image_processor = Sam3ImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    processor = Sam3Processor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
