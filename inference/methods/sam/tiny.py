"""Tiny random SAM, SAM 2 and SAM 3 tracker models, for tests: the real classes at toy sizes.

:func:`save_tiny` writes one as a checkpoint folder (``config.json``, ``model.safetensors``,
the processor's config) so that tests load it back through the same path as a real checkpoint
(:func:`~.variants.load_folder`); the SAM 3 tracker is written as ``facebook/sam3`` holds it
(inside a ``sam3_video`` checkpoint). Weights are random (seeded), so masks mean nothing; tests
compare the predictor with transformers' own pipeline on the same model.

Sizes: every hidden width 32; SAM reads 32×32 images (8×8 patches of 4, 8×8 embeddings,
32×32 low-resolution masks); SAM 2 reads 64×64 (Hiera stride 4, feature maps 16², 8², 4²,
16×16 masks); the SAM 3 tracker reads 56×56 (ViT patches of 14, FPN maps 16², 8², 4², 16×16
masks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SIZES = {"sam": 32, "sam2": 64, "sam3": 56}  # the model's square input side, pixels
_WIDTH = 32
_DECODER: dict[str, Any] = {
    "hidden_size": _WIDTH,
    "mlp_dim": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "iou_head_hidden_dim": _WIDTH,
}


def _sam() -> tuple[Any, Any]:
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    side = SIZES["sam"]
    vision = SamVisionConfig(
        image_size=side,
        patch_size=4,
        hidden_size=_WIDTH,
        output_channels=_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=2,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=_WIDTH // 2,
        mlp_dim=64,
    )
    prompt = SamPromptEncoderConfig(
        image_size=side, patch_size=4, hidden_size=_WIDTH, mask_input_channels=8
    )
    config = SamConfig(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=SamMaskDecoderConfig(**_DECODER),
    )
    processor = SamProcessor(
        image_processor=SamImageProcessor(
            size={"longest_edge": side},
            pad_size={"height": side, "width": side},
            mask_size={"longest_edge": side // 4},
            mask_pad_size={"height": side // 4, "width": side // 4},
        )
    )
    return SamModel(config), processor


def _sam2() -> tuple[Any, Any]:
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2Processor,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    side = SIZES["sam2"]
    hiera = Sam2HieraDetConfig(
        hidden_size=8,
        image_size=side,
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 2, 1],
        # a global block may not open a pooling stage (its window would be 0 after pooling)
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=hiera,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
        fpn_hidden_size=_WIDTH,
    )
    prompt = Sam2PromptEncoderConfig(
        image_size=side, patch_size=16, hidden_size=_WIDTH, mask_input_channels=8
    )
    config = Sam2Config(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=Sam2MaskDecoderConfig(**_DECODER),
    )
    processor = Sam2Processor(
        image_processor=Sam2ImageProcessor(
            size={"height": side, "width": side}, mask_size={"height": 16, "width": 16}
        ),
        target_size=side,
    )
    return Sam2Model(config), processor


def _sam3() -> tuple[Any, Any]:
    from transformers import (
        Sam3ImageProcessor,
        Sam3TrackerConfig,
        Sam3TrackerMaskDecoderConfig,
        Sam3TrackerModel,
        Sam3TrackerProcessor,
        Sam3TrackerPromptEncoderConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    side = SIZES["sam3"]
    vit = Sam3ViTConfig(
        hidden_size=_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=side,
        patch_size=14,
        window_size=2,
        global_attn_indexes=[1],
        pretrain_image_size=28,
    )
    vision = Sam3VisionConfig(
        backbone_config=vit,
        fpn_hidden_size=_WIDTH,
        backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
    )
    prompt = Sam3TrackerPromptEncoderConfig(
        image_size=side, patch_size=14, hidden_size=_WIDTH, mask_input_channels=8
    )
    config = Sam3TrackerConfig(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=Sam3TrackerMaskDecoderConfig(**_DECODER),
    )
    processor = Sam3TrackerProcessor(
        image_processor=Sam3ImageProcessor(
            size={"height": side, "width": side}, mask_size={"height": 16, "width": 16}
        ),
        target_size=side,
    )
    return Sam3TrackerModel(config), processor


_BUILDERS = {"sam": _sam, "sam2": _sam2, "sam3": _sam3}


def tiny_model(arch: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of family ``arch`` (``"sam"``, ``"sam2"``, ``"sam3"``) at toy sizes,
    random weights drawn from ``seed``, in eval mode."""
    if arch not in _BUILDERS:
        raise KeyError(f"no tiny model for {arch!r}; known: {', '.join(_BUILDERS)}")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model, processor = _BUILDERS[arch]()
    finally:
        torch.random.set_rng_state(state)
    return model.eval(), processor


def save_tiny(arch: str, folder: Path, seed: int = 0) -> Path:
    """Write the tiny model of ``arch`` and its processor into ``folder`` (created) as a
    transformers checkpoint; returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, processor = tiny_model(arch, seed)
    if arch == "sam3":
        _save_as_sam3_video(model, folder)
    else:
        model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _save_as_sam3_video(model: Any, folder: Path) -> None:
    """The tracker in the layout of ``facebook/sam3``: a ``sam3_video`` config whose
    ``tracker_config`` describes it, weights under ``tracker_model.`` (the detector's, under
    ``detector_model.``, are absent here; loading the tracker skips them anyway)."""
    from safetensors.torch import save_file
    from transformers import Sam3TrackerVideoConfig, Sam3VideoConfig

    config = model.config
    # ``image_size`` is read from its kwargs and set on every sub-config (default 1008)
    tracker = Sam3TrackerVideoConfig(  # type: ignore[call-arg]
        vision_config=config.vision_config.to_dict(),
        prompt_encoder_config=config.prompt_encoder_config.to_dict(),
        mask_decoder_config=config.mask_decoder_config.to_dict(),
        image_size=SIZES["sam3"],
    )
    Sam3VideoConfig(tracker_config=tracker).save_pretrained(folder)
    weights = {f"tracker_model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
