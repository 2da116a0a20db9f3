"""The SAM family at its real shapes with random weights: every published architecture, no files.

For timing and memory figures without checkpoints (``maskwright bench sam``): each variant's
configuration is transformers' default config class with the published hyper-parameters (those
of transformers' conversion scripts), the model is built with transformers' ordinary random
init (std 0.02 everywhere: see :func:`real_config`), and the processor is the processor class
with its default settings, which are the published checkpoints' (SAM: longest side 1024,
padded to 1024²; SAM 2.1: 1024² stretched; SAM 3: 1008² stretched). Masks from random weights
mean nothing; only the cost is real.

* SAM (:data:`SAM_VISION`): ViT-B is ``SamConfig()`` (768 wide, 12 layers, 12 heads); ViT-L
  and ViT-H change width, depth, heads and the four global-attention layers.
* SAM 2.1 (:data:`SAM2_HIERA`): Hiera-T is ``Sam2HieraDetConfig()``; S, B+ and L change the
  stage depths, widths, heads, the three global-attention blocks and the window sizes.
* SAM 3: the tracker (``Sam3TrackerConfig()``: ViT 1024 wide, 32 layers, 1008² input) for clicks
  and boxes; the whole detector (``Sam3Model`` on ``Sam3Config()``) for text, with a byte-level
  CLIP tokenizer built here (:func:`~.text_tiny.tiny_vocab`): SAM 3 pads every text to 32
  tokens, so the text encoder's cost does not depend on the vocabulary.
"""

from __future__ import annotations

from typing import Any

from .variants import FAMILIES, LoadedSam, family

# SamVisionConfig overrides; ViT-B is the default config
SAM_VISION: dict[str, dict[str, Any]] = {
    "vit-b": {},
    "vit-l": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "global_attn_indexes": [5, 11, 17, 23],
    },
    "vit-h": {
        "hidden_size": 1280,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "global_attn_indexes": [7, 15, 23, 31],
    },
}

# (Sam2HieraDetConfig overrides, Sam2VisionConfig overrides); Hiera-T is the default config.
# The FPN reads the stages deepest first, so ``backbone_channel_list`` is the widths reversed.
SAM2_HIERA: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hiera-tiny": ({}, {}),
    "hiera-small": (
        {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
        {},
    ),
    "hiera-base-plus": (
        {
            "hidden_size": 112,
            "embed_dim_per_stage": [112, 224, 448, 896],
            "num_attention_heads_per_stage": [2, 4, 8, 16],
            "blocks_per_stage": [2, 3, 16, 3],
            "global_attention_blocks": [12, 16, 20],
            "window_positional_embedding_background_size": [14, 14],
        },
        {"backbone_channel_list": [896, 448, 224, 112]},
    ),
    "hiera-large": (
        {
            "hidden_size": 144,
            "embed_dim_per_stage": [144, 288, 576, 1152],
            "num_attention_heads_per_stage": [2, 4, 8, 16],
            "blocks_per_stage": [2, 6, 36, 4],
            "global_attention_blocks": [23, 33, 43],
            "window_positional_embedding_background_size": [7, 7],
            "window_size_per_stage": [8, 4, 16, 8],
        },
        {"backbone_channel_list": [1152, 576, 288, 144]},
    ),
}

ARCHITECTURES: tuple[tuple[str, str], ...] = tuple(
    (name, variant) for name, fam in FAMILIES.items() for variant in fam.variants
)  # (family, variant), smallest first within a family


def real_config(family_name: str, variant: str) -> Any:
    """The transformers config of ``variant`` of a family at its published shapes:
    ``SamConfig``, ``Sam2Config`` or ``Sam3TrackerConfig``. KeyError for an unknown variant."""
    import transformers

    if family_name == "sam":
        # SamVisionConfig's default init std is 1e-10 (weights are always loaded): random
        # weights that small give ~1e-20 activations, whose subnormal floats make a CPU run
        # ten times slower than the real model's; 0.02, as every other SAM config uses
        vision = transformers.SamVisionConfig(initializer_range=0.02, **SAM_VISION[variant])
        return transformers.SamConfig(vision_config=vision)
    if family_name == "sam2":
        hiera, neck = SAM2_HIERA[variant]
        backbone = transformers.Sam2HieraDetConfig(**hiera)
        return transformers.Sam2Config(
            vision_config=transformers.Sam2VisionConfig(backbone_config=backbone, **neck)
        )
    if family_name == "sam3":
        if variant not in family("sam3").variants:
            raise KeyError(f"unknown sam3 variant {variant!r}")
        return transformers.Sam3TrackerConfig()
    raise KeyError(f"unknown SAM family {family_name!r}; known: {', '.join(FAMILIES)}")


def random_loaded(family_name: str, variant: str, device: str = "cpu") -> LoadedSam:
    """``variant`` of a family with random weights (transformers' init) and the default
    processor, as :class:`~.variants.LoadedSam` (eval mode, on ``device``), named
    ``"<variant>-random"``."""
    import transformers

    found = family(family_name)
    config = real_config(family_name, variant)
    model = getattr(transformers, found.model_class)(config).to(device).eval()
    processor = getattr(transformers, found.processor_class)(
        image_processor=default_image_processor(family_name)
    )
    return LoadedSam(found, f"{variant}-random", model, processor, device)


def default_image_processor(family_name: str) -> Any:
    """The family's image processor with default settings (those of the published checkpoints)."""
    import transformers

    name = {"sam": "SamImageProcessor", "sam2": "Sam2ImageProcessor", "sam3": "Sam3ImageProcessor"}
    return getattr(transformers, name[family_name])()


def random_text_model() -> tuple[Any, Any]:
    """(``Sam3Model`` at SAM 3's shapes with random weights, in eval mode on the CPU; its
    ``Sam3Processor``: default image processor, 1008², and the byte-level tokenizer of
    :func:`~.text_tiny.tiny_vocab`), for :class:`~.text.TextFinder`."""
    from transformers import CLIPTokenizer, Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    from .text_tiny import tiny_vocab

    tokenizer = CLIPTokenizer(vocab=tiny_vocab(), merges=[])
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=tokenizer)
    return Sam3Model(Sam3Config()).eval(), processor


def parameter_count(model: Any) -> int:
    """How many parameters ``model`` holds."""
    return sum(p.numel() for p in model.parameters())
